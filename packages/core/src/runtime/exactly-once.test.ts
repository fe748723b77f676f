import { describe, expect, it } from 'vitest';
import { StreamError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { MemoryBroker, MemoryTransport } from '../transport/memory/index.js';
import type { GroupMetadata, PartitionOffset, TopicPartition, TransportConsumer } from '../transport/transport.js';
import { noInstrumentation } from './instrumentation.js';
import { TransactionalPartitions, type TransactionalHost } from './exactly-once.js';
import { PartitionState } from './partition.js';

const GROUP = 'shop';
const TRANSACTIONAL_ID = `${GROUP}.orders.0`;
const HEARTBEAT_MS = 10;

/** Just the consumer calls a claim makes, recorded in order. */
function fakeConsumer() {
  const calls: string[] = [];
  const name = (tps: readonly TopicPartition[]) => tps.map((tp) => `${tp.topic}/${tp.partition}`).join(',');
  const consumer = {
    pause: (tps: readonly TopicPartition[]) => void calls.push(`pause ${name(tps)}`),
    resume: (tps: readonly TopicPartition[]) => void calls.push(`resume ${name(tps)}`),
    seek: (p: PartitionOffset) => void calls.push(`seek ${p.topic}/${p.partition}@${p.offset}`),
  } as unknown as TransportConsumer;
  return { consumer, calls };
}

function setup() {
  const broker = new MemoryBroker();
  broker.createTopic('orders', 1);
  broker.createTopic('receipts', 1);
  const transport = new MemoryTransport(broker);
  const { consumer, calls } = fakeConsumer();
  let current = new PartitionState('orders', 0, 1);
  const crashes: Error[] = [];
  const host: TransactionalHost = {
    consumer: () => consumer,
    groupMetadata: () => undefined,
    isCurrent: (state) => state === current && !state.revoked,
    renew: () => (current = new PartitionState('orders', 0, 1)),
    crash: (error) => void crashes.push(error),
  };
  const partitions = new TransactionalPartitions(
    { transport, groupId: GROUP, heartbeatIntervalMs: HEARTBEAT_MS, log: silentLogger(), instrumentation: noInstrumentation },
    host,
  );
  return { broker, transport, partitions, calls, crashes, current: () => current };
}

/** Resolves once `condition` holds, polling every millisecond (fails the test after a second). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  expect(condition()).toBe(true);
}

/** A finished record on `state` with one output to receipts. */
function complete(state: PartitionState, offset: number): void {
  const delivery = state.accept({ key: null, value: Buffer.from(`order-${offset}`), headers: {}, offset: String(offset), timestamp: '0' }, offset);
  state.done(delivery, [{ topic: 'receipts', key: null, value: Buffer.from(`receipt-${offset}`), headers: {} }]);
}

/**
 * Makes the next transaction commit of `transport`'s producers fail to the caller, as when EndTxn's answer is
 * lost: with `reachesBroker` the broker committed first, else nothing was committed. Returns how many
 * commits failed so far.
 */
function loseNextCommitAnswer(transport: MemoryTransport, reachesBroker: boolean): () => number {
  const original = transport.producer.bind(transport);
  let armed = true;
  let failed = 0;
  transport.producer = (options) => {
    const producer = original(options);
    const transaction = producer.transaction.bind(producer);
    producer.transaction = async () => {
      const tx = await transaction();
      const commit = tx.commit.bind(tx);
      const abort = tx.abort.bind(tx);
      let lost = false;
      tx.commit = async () => {
        if (!armed) return commit();
        armed = false;
        failed += 1;
        lost = true;
        if (reachesBroker) await commit();
        throw new StreamError('TRANSPORT_FAILED', 'commit failed: request timed out');
      };
      // After a failed commit, an abort does nothing (as in the kafkajs transport): the transaction stays
      // open on the broker until the transactional id is initialised again.
      tx.abort = () => (lost ? Promise.resolve() : abort());
      return tx;
    };
    return producer;
  };
  return () => failed;
}

describe('TransactionalPartitions', () => {
  it("claims a partition by fencing the previous owner's producer, then seeks to the committed offset and resumes", async () => {
    const t = setup();
    const previous = t.transport.producer({ transactionalId: TRANSACTIONAL_ID });
    await previous.connect();
    const tx = await previous.transaction();
    await tx.sendOffsets(GROUP, [{ topic: 'orders', partition: 0, offset: '5' }]);
    await tx.commit();

    const state = t.current();
    t.partitions.claim(state);
    expect(state.claiming).toBe(true);
    expect(t.calls).toEqual(['pause orders/0']);
    await until(() => !state.claiming);
    expect(t.calls).toEqual(['pause orders/0', 'seek orders/0@5', 'resume orders/0']);
    await expect(previous.transaction()).rejects.toMatchObject({ context: { fenced: true } });
    await t.partitions.close();
  });

  it('without a committed offset seeks to `rewindTo`, or not at all, and keeps a paused partition paused', async () => {
    const t = setup();
    const state = t.current();
    state.paused = true;
    t.partitions.claim(state, { delayMs: 0, rewindTo: 3 });
    await until(() => !state.claiming);
    expect(t.calls).toEqual(['pause orders/0', 'seek orders/0@3']);

    const other = setup();
    other.partitions.claim(other.current());
    await until(() => !other.current().claiming);
    expect(other.calls).toEqual(['pause orders/0', 'resume orders/0']);
    await Promise.all([t.partitions.close(), other.partitions.close()]);
  });

  it('gives up a claim once the partition is no longer ours, without seeking or resuming', async () => {
    const t = setup();
    const state = t.current();
    t.partitions.claim(state);
    state.revoke('rebalance');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(t.calls).toEqual(['pause orders/0']);
    // Nothing is left to commit from: the claim's producer was closed.
    await t.partitions.commit([{ state, offset: 1 }]);
    expect(t.broker.committed(GROUP)).toEqual([]);
  });

  it("commits the completed prefix's outputs and offset in one transaction", async () => {
    const t = setup();
    const state = t.current();
    t.partitions.claim(state);
    await until(() => !state.claiming);
    complete(state, 0);
    complete(state, 1);
    await t.partitions.commit([{ state, offset: 2 }]);
    expect(t.broker.messages('receipts').map((m) => m.value?.toString())).toEqual(['receipt-0', 'receipt-1']);
    expect(t.broker.committed(GROUP)).toEqual([{ topic: 'orders', partition: 0, offset: '2' }]);
    expect(state.tracker.committed).toBe(2);
    expect(state.outputsBefore(2)).toEqual([]);
    await t.partitions.close();
  });

  it('when fenced while still assigned drops the state and claims the partition again from the committed offset', async () => {
    const t = setup();
    const state = t.current();
    t.partitions.claim(state);
    await until(() => !state.claiming);
    complete(state, 0);
    await t.partitions.commit([{ state, offset: 1 }]);
    complete(state, 1);
    // A newer producer with the same transactional id (another instance claiming the partition) fences ours.
    const newer = t.transport.producer({ transactionalId: TRANSACTIONAL_ID });
    await newer.connect();
    t.calls.length = 0;

    await t.partitions.commit([{ state, offset: 2 }]);
    expect(state.revoked).toBe(true);
    expect(t.broker.messages('receipts')).toHaveLength(1);
    const fresh = t.current();
    expect(fresh).not.toBe(state);
    expect(fresh.claiming).toBe(true);
    expect(t.calls).toEqual(['pause orders/0']);
    await until(() => !fresh.claiming);
    expect(t.calls).toEqual(['pause orders/0', 'seek orders/0@1', 'resume orders/0']);
    // The re-claim fenced the newer producer in turn.
    await expect(newer.transaction()).rejects.toBeInstanceOf(StreamError);
    expect(t.crashes).toEqual([]);
    await t.partitions.close();
  });

  it('retries a claim whose broker calls fail, until it succeeds', async () => {
    const t = setup();
    const admin = t.transport.admin();
    let failures = 1;
    const committedOffsets = admin.committedOffsets.bind(admin);
    // The first attempt's offset read fails, as when the coordinator is moving.
    (t.transport as { admin: () => typeof admin }).admin = () => ({
      ...admin,
      connect: () => admin.connect(),
      disconnect: () => admin.disconnect(),
      committedOffsets: (group: string, topic: string) => (failures-- > 0 ? Promise.reject(new Error('coordinator moving')) : committedOffsets(group, topic)),
    });
    const state = t.current();
    t.partitions.claim(state);
    await until(() => !state.claiming);
    expect(failures).toBe(-1);
    expect(t.calls).toEqual(['pause orders/0', 'resume orders/0']);
    await t.partitions.close();
  });
  it('a commit whose answer is lost after the broker committed is settled as committed: its outputs are not sent again', async () => {
    const t = setup();
    const failures = loseNextCommitAnswer(t.transport, true);
    const state = t.current();
    t.partitions.claim(state);
    await until(() => !state.claiming);
    complete(state, 0);
    complete(state, 1);
    await t.partitions.commit([{ state, offset: 2 }]);
    expect(failures()).toBe(1);
    expect(state.tracker.committed).toBe(2);
    complete(state, 2);
    await t.partitions.commit([{ state, offset: 3 }]);
    expect(t.broker.messages('receipts').map((m) => m.value?.toString())).toEqual(['receipt-0', 'receipt-1', 'receipt-2']);
    expect(t.broker.committed(GROUP)).toEqual([{ topic: 'orders', partition: 0, offset: '3' }]);
    expect(state.revoked).toBe(false);
    expect(t.crashes).toEqual([]);
    await t.partitions.close();
  });

  it('a commit that failed before the broker committed is settled as aborted: the next round commits its outputs once', async () => {
    const t = setup();
    loseNextCommitAnswer(t.transport, false);
    const state = t.current();
    t.partitions.claim(state);
    await until(() => !state.claiming);
    complete(state, 0);
    await expect(t.partitions.commit([{ state, offset: 1 }])).rejects.toThrow(/aborted/);
    expect(state.tracker.committed).toBeUndefined();
    expect(t.broker.committed(GROUP)).toEqual([]);
    await t.partitions.commit([{ state, offset: 1 }]);
    expect(t.broker.messages('receipts').map((m) => m.value?.toString())).toEqual(['receipt-0']);
    expect(t.broker.committed(GROUP)).toEqual([{ topic: 'orders', partition: 0, offset: '1' }]);
    await t.partitions.close();
  });
});

/**
 * Per consumer (KIP-447): a real member of the group on a memory transport whose consumers tell their group
 * metadata; the fake consumer records the claim's calls and answers with that member's metadata.
 */
async function setupPerConsumer() {
  const broker = new MemoryBroker();
  broker.createTopic('orders', 2);
  broker.createTopic('receipts', 1);
  const transport = new MemoryTransport(broker, { groupMetadata: true });
  const member = transport.consumer({
    groupId: GROUP,
    topics: ['orders'],
    fromBeginning: true,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: HEARTBEAT_MS,
    rebalanceTimeoutMs: 10_000,
    readCommitted: true,
    maxBytesPerPartition: 1 << 20,
  });
  await member.start({ onAssignment: () => undefined, onBatch: () => 0, onRevoking: () => undefined, onCrash: () => undefined });
  const { consumer, calls } = fakeConsumer();
  let metadata: GroupMetadata | undefined = member.groupMetadata?.();
  const withMetadata = Object.assign(consumer, { groupMetadata: () => metadata });
  const states = [new PartitionState('orders', 0, 1), new PartitionState('orders', 1, 1)];
  const host: TransactionalHost = {
    consumer: () => withMetadata,
    groupMetadata: () => metadata,
    isCurrent: (state) => states.includes(state) && !state.revoked,
    renew: (state) => state,
    crash: (error) => {
      throw error;
    },
  };
  const partitions = new TransactionalPartitions(
    { transport, groupId: GROUP, heartbeatIntervalMs: HEARTBEAT_MS, log: silentLogger(), instrumentation: noInstrumentation },
    host,
  );
  for (const state of states) partitions.claim(state);
  await until(() => states.every((state) => !state.claiming));
  return {
    broker,
    transport,
    partitions,
    calls,
    states,
    member,
    setMetadata: (next: GroupMetadata | undefined) => (metadata = next),
    close: async () => {
      await partitions.close();
      await member.stop();
    },
  };
}

const receipts = (broker: MemoryBroker) => broker.messages('receipts').map((m) => m.value?.toString());

describe('TransactionalPartitions per consumer (KIP-447)', () => {
  it('claims by reading the committed offset only: no producer per partition', async () => {
    const t = await setupPerConsumer();
    expect(t.partitions.perConsumer).toBe(true);
    expect(t.calls).toEqual(['pause orders/0', 'pause orders/1', 'resume orders/0', 'resume orders/1']);
    await t.close();
  });

  it("commits every partition's prefix in one transaction of one producer, checked against the member's generation", async () => {
    const t = await setupPerConsumer();
    const [a, b] = t.states as [PartitionState, PartitionState];
    complete(a, 0);
    complete(a, 1);
    complete(b, 0);
    await t.partitions.commit([
      { state: a, offset: 2 },
      { state: b, offset: 1 },
    ]);
    expect(receipts(t.broker)).toEqual(['receipt-0', 'receipt-1', 'receipt-0']);
    expect(t.broker.committed(GROUP)).toEqual([
      { topic: 'orders', partition: 0, offset: '2' },
      { topic: 'orders', partition: 1, offset: '1' },
    ]);
    complete(b, 1);
    await t.partitions.commit([{ state: b, offset: 2 }]);
    const ids = new Set(t.broker.commitHistory(GROUP).map((record) => record.transactionalId));
    // Two rounds, one transactional id: the consumer's, not one per partition.
    expect(t.broker.commitHistory(GROUP)).toHaveLength(2);
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(new RegExp(`^${GROUP}\\.[0-9a-f-]{36}$`));
    await t.close();
  });

  it("refuses a zombie's commit (a generation the group left behind): nothing is visible, and the outputs commit once in the member's new generation", async () => {
    const t = await setupPerConsumer();
    const [a] = t.states as [PartitionState];
    const current = t.member.groupMetadata?.();
    if (!current) throw new Error('the member has joined');
    t.setMetadata({ ...current, generationId: current.generationId - 1 });
    complete(a, 0);
    await expect(t.partitions.commit([{ state: a, offset: 1 }])).rejects.toMatchObject({ context: { groupFenced: true } });
    expect(receipts(t.broker)).toEqual([]);
    expect(t.broker.committed(GROUP)).toEqual([]);
    expect(a.tracker.committed).toBeUndefined();
    t.setMetadata({ ...current, memberId: 'gone' });
    await expect(t.partitions.commit([{ state: a, offset: 1 }])).rejects.toMatchObject({ context: { groupFenced: true } });
    t.setMetadata(current);
    await t.partitions.commit([{ state: a, offset: 1 }]);
    expect(receipts(t.broker)).toEqual(['receipt-0']);
    expect(t.broker.committed(GROUP)).toEqual([{ topic: 'orders', partition: 0, offset: '1' }]);
    await t.close();
  });

  it('skips partitions no longer current, and commits nothing before the first assignment', async () => {
    const t = await setupPerConsumer();
    const [a, b] = t.states as [PartitionState, PartitionState];
    complete(a, 0);
    complete(b, 0);
    t.setMetadata(undefined);
    await t.partitions.commit([{ state: a, offset: 1 }]);
    expect(t.broker.committed(GROUP)).toEqual([]);
    t.setMetadata(t.member.groupMetadata?.());
    b.revoke('rebalance');
    await t.partitions.commit([
      { state: a, offset: 1 },
      { state: b, offset: 1 },
    ]);
    expect(receipts(t.broker)).toEqual(['receipt-0']);
    expect(t.broker.committed(GROUP)).toEqual([{ topic: 'orders', partition: 0, offset: '1' }]);
    await t.close();
  });

  for (const reachesBroker of [true, false]) {
    it(`settles a commit of unknown outcome (${reachesBroker ? 'committed' : 'aborted'} on the broker) before sending anything again: every output once`, async () => {
      const t = await setupPerConsumer();
      const failures = loseNextCommitAnswer(t.transport, reachesBroker);
      const [a, b] = t.states as [PartitionState, PartitionState];
      complete(a, 0);
      complete(b, 0);
      const first = t.partitions.commit([
        { state: a, offset: 1 },
        { state: b, offset: 1 },
      ]);
      if (reachesBroker) await first;
      else await expect(first).rejects.toThrow(/aborted/);
      expect(failures()).toBe(1);
      expect(t.partitions.inDoubt(a)).toBe(false);
      complete(a, 1);
      await t.partitions.commit([
        { state: a, offset: 2 },
        { state: b, offset: 1 },
      ]);
      expect(receipts(t.broker)?.sort()).toEqual(['receipt-0', 'receipt-0', 'receipt-1']);
      expect(t.broker.committed(GROUP)).toEqual([
        { topic: 'orders', partition: 0, offset: '2' },
        { topic: 'orders', partition: 1, offset: '1' },
      ]);
      await t.close();
    });
  }
});
