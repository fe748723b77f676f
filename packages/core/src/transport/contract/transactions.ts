import { describe, expect, it } from 'vitest';
import type { OutgoingMessage, TransportProducer } from '../transport.js';
import { contractTest, record, tp, type ContractContext } from './contract-context.js';
import type { TransportFactory } from './transport-under-test.js';

/** What a fenced producer's failure looks like: the runtime tells it from other transport failures by `context.fenced`. */
const FENCED = { code: 'TRANSPORT_FAILED', context: { fenced: true } } as const;

/** Starts a read-committed member on `topic` and waits until it accepted the record with value `last`. */
async function readCommittedUpTo(c: ContractContext, topic: string, last: string): Promise<(string | null)[]> {
  const { probe } = await c.member(c.name('read-committed'), [topic], { readCommitted: true });
  await c.until(() => probe.values().includes(last), `a read-committed consumer to see ${last}`);
  return probe.values();
}

/** Sends one record in a transaction of its own and commits it, aborting (best effort) when a step fails, as the runtime does. */
async function sendInTransaction(producer: TransportProducer, message: OutgoingMessage): Promise<void> {
  const tx = await producer.transaction();
  try {
    await tx.send([message]);
    await tx.commit();
  } catch (error) {
    await tx.abort().catch(() => undefined);
    throw error;
  }
}

/**
 * Transactions as the exactly-once path uses them: outputs and the consumer group's offsets commit
 * together or not at all, and a restarted worker's producer (same transactional id) fences its zombie.
 */
export function describeTransactions(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('transactions', () => {
    test('a committed transaction publishes its records and moves the group offsets; an aborted one does neither', async (c) => {
      const input = await c.topic('tx-in', 2);
      const output = await c.topic('tx-out', 1);
      const groupId = c.name('tx-group');
      const admin = await c.admin();
      const producer = await c.producer(c.name('tx-id'));

      const committed = await producer.transaction();
      await committed.send(['c1-0', 'c1-1'].map((v) => record(output, v, { key: v })));
      await committed.sendOffsets(groupId, [{ ...tp(input, 0), offset: '5' }]);
      await committed.commit();
      await c.committedOffsetsBecome(admin, groupId, input, [{ ...tp(input, 0), offset: '5' }]);

      const aborted = await producer.transaction();
      await aborted.send(['a-0', 'a-1'].map((v) => record(output, v, { key: v })));
      await aborted.sendOffsets(groupId, [{ ...tp(input, 0), offset: '9' }]);
      await aborted.abort();

      // One producer's transactions complete in order: once this one's offset (another partition) is
      // visible, the abort before it has been applied too.
      const last = await producer.transaction();
      await last.send([record(output, 'c3-0', { key: 'c3-0' })]);
      await last.sendOffsets(groupId, [{ ...tp(input, 1), offset: '3' }]);
      await last.commit();
      await c.committedOffsetsBecome(admin, groupId, input, [
        { ...tp(input, 0), offset: '5' },
        { ...tp(input, 1), offset: '3' },
      ]);

      // c3-0 lies after the aborted records: once it is read, they would have been.
      expect(await readCommittedUpTo(c, output, 'c3-0')).toEqual(['c1-0', 'c1-1', 'c3-0']);

      // An agent that produced nothing still commits its input offsets in a transaction of offsets only.
      const offsetsOnly = await producer.transaction();
      await offsetsOnly.sendOffsets(groupId, [{ ...tp(input, 0), offset: '7' }]);
      await offsetsOnly.commit();
      await c.committedOffsetsBecome(admin, groupId, input, [
        { ...tp(input, 0), offset: '7' },
        { ...tp(input, 1), offset: '3' },
      ]);
    });

    test('a member of the group resumes where a transaction committed the group offset', async (c) => {
      const input = await c.topic('tx-resume-in', 1);
      await c.send(Array.from({ length: 5 }, (_, i) => record(input, `in-${i}`, { partition: 0 })));
      const groupId = c.name('tx-resume-group');
      const admin = await c.admin();

      // As the exactly-once path does: the consumer reads, a transaction commits the offsets for its group.
      const first = await c.member(groupId, [input]);
      await c.until(() => first.probe.accepted.length >= 5, 'the first member to read the input');
      const producer = await c.producer(c.name('tx-resume-id'));
      const tx = await producer.transaction();
      await tx.sendOffsets(groupId, [{ ...tp(input, 0), offset: '3' }]);
      await tx.commit();
      await c.committedOffsetsBecome(admin, groupId, input, [{ ...tp(input, 0), offset: '3' }]);
      await first.consumer.stop();

      const second = await c.member(groupId, [input]);
      await c.until(() => second.probe.accepted.length >= 2, 'the second member to read after the transactional offset');
      expect(second.probe.values()).toEqual(['in-3', 'in-4']);
    });

    // Known divergences, not pinned (see the contract suite's report): on Kafka every transaction leaves a
    // commit or abort marker that takes an offset, and aborted records stay in the log (visible to
    // read-uncommitted consumers); the memory broker appends committed records only, so offsets after a
    // transaction, end offsets and high watermarks differ. Nothing the runtime does depends on them.
    it.skip('transaction markers take offsets (Kafka) — the memory broker does not write markers', () => undefined);
    it.skip('read-uncommitted consumers see aborted records (Kafka) — the memory broker drops them on abort', () => undefined);

    test('a second producer with the same transactional id fences the first: its commit and its sends fail', async (c) => {
      const output = await c.topic('fence', 1);
      const transactionalId = c.name('fence-id');

      const first = await c.producer(transactionalId);
      const before = await first.transaction();
      await before.send([record(output, 'first-0')]);
      await before.commit();

      // The zombie's transaction is open when its successor registers the same id.
      const zombie = await first.transaction();
      await zombie.send([record(output, 'zombie-0')]);
      const second = await c.producer(transactionalId);
      await expect(zombie.commit()).rejects.toMatchObject(FENCED);
      await zombie.abort().catch(() => undefined);

      // Fenced for good: a new transaction cannot send either (it may already fail to begin).
      await expect(sendInTransaction(first, record(output, 'zombie-1'))).rejects.toMatchObject(FENCED);

      await sendInTransaction(second, record(output, 'second-0'));
      // A producer fenced while idle learns it at its next transaction, whichever step the transport
      // notices it in; the runtime handles every step alike.
      const third = await c.producer(transactionalId);
      await expect(sendInTransaction(second, record(output, 'zombie-2'))).rejects.toMatchObject(FENCED);
      await sendInTransaction(third, record(output, 'third-0'));
      expect(await readCommittedUpTo(c, output, 'third-0')).toEqual(['first-0', 'second-0', 'third-0']);
    });
  });
}
