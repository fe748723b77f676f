import { describe, expect } from 'vitest';
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
    });

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
      const again = async (): Promise<void> => {
        const tx = await first.transaction();
        await tx.send([record(output, 'zombie-1')]);
        await tx.commit();
      };
      await expect(again()).rejects.toMatchObject(FENCED);

      const successor = await second.transaction();
      await successor.send([record(output, 'second-0')]);
      await successor.commit();
      expect(await readCommittedUpTo(c, output, 'second-0')).toEqual(['first-0', 'second-0']);
    });
  });
}
