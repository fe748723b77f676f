import { afterEach, describe, expect, it } from 'vitest';
import { StreamError } from '../../errors.js';
import { MemoryBroker, MemoryTransport } from './index.js';
import type { Assignment, ConsumerListener, ConsumerOptions, FetchedBatch, OutgoingMessage, TopicPartition, TransportConsumer } from '../transport.js';

/** Polls `condition` every 2 ms until it holds; fails naming `what` after `timeoutMs`. */
async function until(condition: () => boolean, what = 'condition', timeoutMs = 800): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets every queued macrotask run, enough for the fetch loop to deliver whatever it would. */
const settle = async (rounds = 20): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
};

const message = (topic: string, key: string | null, value: string, partition?: number): OutgoingMessage => ({
  topic,
  key: key === null ? null : Buffer.from(key),
  value: Buffer.from(value),
  headers: { trace: Buffer.from(`t-${value}`) },
  ...(partition === undefined ? {} : { partition }),
});

const options = (groupId: string, topics: string[], overrides: Partial<ConsumerOptions> = {}): ConsumerOptions => ({
  groupId,
  topics,
  fromBeginning: true,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1_000,
  rebalanceTimeoutMs: 10_000,
  readCommitted: true,
  maxBytesPerPartition: 1024 * 1024,
  ...overrides,
});

/**
 * A listener that records what it hears; `accept` decides how much of each batch it takes, `onRevoking`
 * runs when the group starts a rebalance.
 */
function recorder(accept: (batch: FetchedBatch) => number = (b) => b.messages.length, onRevoking: () => void = () => undefined) {
  const assignments: Assignment[] = [];
  const batches: FetchedBatch[] = [];
  const crashes: Error[] = [];
  /** The group events in order: `g<generation>` for an assignment, `revoking` for onRevoking. */
  const events: string[] = [];
  const listener: ConsumerListener = {
    onAssignment: (a) => {
      assignments.push(a);
      events.push(`g${a.generation}`);
    },
    onBatch: (b) => {
      batches.push(b);
      return accept(b);
    },
    onRevoking: () => {
      events.push('revoking');
      onRevoking();
    },
    onCrash: (e) => void crashes.push(e),
  };
  const values = (partition?: number) =>
    batches.filter((b) => partition === undefined || b.partition === partition).flatMap((b) => b.messages.map((m) => m.value?.toString()));
  const last = () => assignments.at(-1);
  return { listener, assignments, batches, crashes, events, values, last };
}

const names = (tps: readonly TopicPartition[] | undefined) => (tps ?? []).map((tp) => `${tp.topic}/${tp.partition}`);

async function rejection(promise: Promise<unknown>): Promise<StreamError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof StreamError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): StreamError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StreamError) return error;
    throw error;
  }
  throw new Error('expected a throw');
}

describe('MemoryTransport', () => {
  const started: TransportConsumer[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((c) => c.stop()));
  });

  function setup(topics: Record<string, number>, maxBatchSize?: number) {
    const broker = new MemoryBroker();
    for (const [name, partitions] of Object.entries(topics)) broker.createTopic(name, partitions);
    const transport = new MemoryTransport(broker, maxBatchSize === undefined ? {} : { maxBatchSize });
    const produce = async (...messages: OutgoingMessage[]) => {
      const producer = transport.producer();
      await producer.connect();
      await producer.send(messages);
      await producer.disconnect();
    };
    /** Starts a consumer (a new one, or `consumer` when the listener needs it) and records what it hears. */
    const consume = async (
      groupId: string,
      topicNames: string[],
      rec = recorder(),
      overrides: Partial<ConsumerOptions> = {},
      consumer = transport.consumer(options(groupId, topicNames, overrides)),
    ) => {
      started.push(consumer);
      await consumer.start(rec.listener);
      return { consumer, ...rec };
    };
    return { broker, transport, produce, consume };
  }

  describe('producing and consuming', () => {
    it('round-trips messages with keys, headers, offsets, timestamps and high watermarks', async () => {
      const { broker, produce, consume } = setup({ orders: 3 });
      const before = Date.now();
      await produce(...Array.from({ length: 30 }, (_, i) => message('orders', `k${i % 5}`, `v${i}`)));
      const c = await consume('g', ['orders']);
      await until(() => c.values().length === 30, '30 messages');

      expect(new Set(c.values())).toEqual(new Set(Array.from({ length: 30 }, (_, i) => `v${i}`)));
      for (let p = 0; p < 3; p++) {
        const stored = broker.messages('orders', p);
        expect(c.values(p)).toEqual(stored.map((m) => m.value?.toString()));
        expect(stored.map((m) => m.offset)).toEqual(stored.map((_, i) => String(i)));
        for (const b of c.batches.filter((x) => x.partition === p)) expect(b.highWatermark).toBe(String(stored.length));
      }
      const first = broker.messages('orders').find((m) => m.value?.toString() === 'v7');
      expect(first?.key?.toString()).toBe('k2');
      expect(first?.headers.trace?.toString()).toBe('t-v7');
      expect(Number(first?.timestamp)).toBeGreaterThanOrEqual(before);
      expect(broker.endOffsets('orders').reduce((n, e) => n + Number(e.offset), 0)).toBe(30);
    });

    it('copies the bytes it stores, so a producer may reuse its buffers', async () => {
      const { broker, produce } = setup({ t: 1 });
      const value = Buffer.from('abc');
      await produce({ topic: 't', key: null, value, headers: {} });
      value.write('xyz');
      expect(broker.messages('t')[0]?.value?.toString()).toBe('abc');
    });

    it('wakes an idle consumer when messages are appended later', async () => {
      const { produce, consume } = setup({ t: 2 });
      const c = await consume('g', ['t']);
      await settle();
      expect(c.batches).toHaveLength(0);
      await produce(message('t', 'a', 'late'));
      await until(() => c.values().length === 1, 'the late message');
    });

    it('starts at the log end without a committed offset unless fromBeginning', async () => {
      const { produce, consume } = setup({ t: 1 });
      await produce(message('t', null, 'old'));
      const c = await consume('g', ['t'], recorder(), { fromBeginning: false });
      await produce(message('t', null, 'new'));
      await until(() => c.values().length === 1, 'the new message');
      await settle();
      expect(c.values()).toEqual(['new']);
    });

    it('never calls the listener synchronously from start, resume or commit', async () => {
      const { produce, transport } = setup({ t: 1 });
      await produce(message('t', null, 'a'));
      const rec = recorder(() => 0);
      const consumer = transport.consumer(options('g', ['t']));
      started.push(consumer);
      const starting = consumer.start(rec.listener);
      expect(rec.assignments).toHaveLength(0);
      await starting;
      expect(rec.assignments).toHaveLength(1);
      consumer.pause([{ topic: 't', partition: 0 }]);
      consumer.resume([{ topic: 't', partition: 0 }]);
      const committing = consumer.commit([{ topic: 't', partition: 0, offset: '0' }]);
      expect(rec.batches).toHaveLength(0);
      await committing;
      await until(() => rec.batches.length > 0, 'a batch');
    });

    it('caps batches at maxBatchSize and interleaves partitions round-robin', async () => {
      const { produce, consume } = setup({ t: 2 }, 2);
      await produce(...Array.from({ length: 12 }, (_, i) => message('t', null, `v${i}`, i % 2)));
      const c = await consume('g', ['t']);
      await until(() => c.values().length === 12, 'all messages');
      expect(c.batches.map((b) => b.messages.length)).toEqual([2, 2, 2, 2, 2, 2]);
      expect(c.batches.map((b) => b.partition)).toEqual([0, 1, 0, 1, 0, 1]);
      expect(c.values(0)).toEqual(['v0', 'v2', 'v4', 'v6', 'v8', 'v10']);
    });

    it('limits a batch to about maxBytesPerPartition, but always delivers at least one message', async () => {
      const { produce, consume } = setup({ t: 1 });
      await produce(...Array.from({ length: 4 }, (_, i) => ({ topic: 't', key: null, value: Buffer.alloc(100, i), headers: {} })));
      const c = await consume('g', ['t'], recorder(), { maxBytesPerPartition: 50 });
      await until(() => c.batches.length === 4, 'four batches');
      expect(c.batches.map((b) => b.messages.length)).toEqual([1, 1, 1, 1]);
    });
  });

  describe('partitioning', () => {
    it("routes keys with Kafka's murmur2, so keys land where the Java client and kafkajs put them", async () => {
      // murmur2 values from Kafka's own UtilsTest.
      const vectors: [string, number][] = [
        ['21', -973932308],
        ['foobar', -790332482],
        ['a-little-bit-long-string', -985981536],
        ['a-little-bit-longer-string', -1486304829],
        ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
        ['abc', 479470107],
      ];
      const { broker, produce } = setup({ t: 7 });
      await produce(...vectors.map(([key]) => message('t', key, key)));
      for (const [key, hash] of vectors) {
        const stored = broker.messages('t').find((m) => m.key?.toString() === key);
        expect(stored?.partition, key).toBe((hash & 0x7fffffff) % 7);
      }
    });

    it('keeps every message of a key on one partition, honours explicit partitions and spreads null keys round-robin', async () => {
      const { broker, produce } = setup({ t: 4 });
      await produce(...Array.from({ length: 20 }, (_, i) => message('t', `key-${i % 3}`, `v${i}`)));
      for (let k = 0; k < 3; k++) {
        const partitions = new Set(
          broker
            .messages('t')
            .filter((m) => m.key?.toString() === `key-${k}`)
            .map((m) => m.partition),
        );
        expect(partitions.size).toBe(1);
      }
      await produce(message('t', 'key-0', 'pinned', 3));
      expect(broker.messages('t', 3).at(-1)?.value?.toString()).toBe('pinned');
      const before = broker.endOffsets('t').map((e) => Number(e.offset));
      await produce(...Array.from({ length: 8 }, (_, i) => message('t', null, `n${i}`)));
      expect(broker.endOffsets('t').map((e, p) => Number(e.offset) - (before[p] ?? 0))).toEqual([2, 2, 2, 2]);
    });

    it('rejects a partition the topic does not have', async () => {
      const { produce } = setup({ t: 2 });
      const error = await rejection(produce(message('t', null, 'x', 2)));
      expect(error.code).toBe('TOPIC_MISSING');
    });
  });

  describe('pause, resume and accepted prefixes', () => {
    it('re-delivers what a batch did not accept once the partition is resumed', async () => {
      const { produce, consume, transport } = setup({ t: 1 });
      await produce(...Array.from({ length: 10 }, (_, i) => message('t', null, `v${i}`)));
      const consumer = transport.consumer(options('g', ['t']));
      let first = true;
      const c = await consume(
        'g',
        ['t'],
        recorder((b) => {
          if (!first) return b.messages.length;
          first = false;
          consumer.pause([{ topic: b.topic, partition: b.partition }]);
          return 3;
        }),
        {},
        consumer,
      );
      await until(() => c.batches.length === 1, 'the first batch');
      await settle();
      expect(c.batches).toHaveLength(1);
      c.consumer.resume([{ topic: 't', partition: 0 }]);
      await until(() => c.batches.length === 2, 'the re-delivery');
      expect(c.batches[1]?.messages[0]?.offset).toBe('3');
      expect(c.batches[1]?.messages.map((m) => m.value?.toString())).toEqual(['v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9']);
    });

    it('re-delivers a partly accepted batch after a short delay when the listener did not pause', async () => {
      const { produce, consume } = setup({ t: 1 });
      await produce(...Array.from({ length: 4 }, (_, i) => message('t', null, `v${i}`)));
      const c = await consume(
        'g',
        ['t'],
        recorder(() => 1),
      );
      await until(() => c.batches.length === 4, 'four batches');
      expect(c.batches.map((b) => b.messages[0]?.offset)).toEqual(['0', '1', '2', '3']);
    });

    it('delivers nothing of a paused partition until it is resumed', async () => {
      const { produce, transport } = setup({ t: 2 });
      const rec = recorder();
      const consumer = transport.consumer(options('g', ['t']));
      started.push(consumer);
      consumer.pause([{ topic: 't', partition: 0 }]);
      await consumer.start(rec.listener);
      await produce(message('t', null, 'p0', 0), message('t', null, 'p1', 1));
      await until(() => rec.values().length === 1, 'partition 1');
      await settle();
      expect(rec.values()).toEqual(['p1']);
      consumer.resume([{ topic: 't', partition: 0 }]);
      await until(() => rec.values().length === 2, 'partition 0');
    });

    it('keeps the pauses of partitions a member kept across a rebalance and forgets those of partitions it lost', async () => {
      const { produce, consume } = setup({ t: 2 });
      const a = await consume('g', ['t']);
      a.consumer.pause([
        { topic: 't', partition: 0 },
        { topic: 't', partition: 1 },
      ]);
      const b = await consume('g', ['t']);
      await until(() => a.last()?.generation === 2, 'generation 2');
      expect(names(a.last()?.partitions)).toEqual(['t/0']);
      await b.consumer.stop();
      await until(() => a.last()?.generation === 3, 'generation 3');
      // Partition 1 came back fresh, as the runtime expects of a newly assigned partition; partition 0 stayed paused.
      await produce(message('t', null, 'p0', 0), message('t', null, 'p1', 1));
      await until(() => a.values().length === 1, 'partition 1');
      await settle();
      expect(a.values()).toEqual(['p1']);
      a.consumer.resume([{ topic: 't', partition: 0 }]);
      await until(() => a.values().length === 2, 'partition 0');
    });

    it('crashes the consumer when onBatch claims more than it was given', async () => {
      const { produce, consume, broker } = setup({ t: 1 });
      await produce(message('t', null, 'x'));
      const c = await consume(
        'g',
        ['t'],
        recorder((b) => b.messages.length + 1),
      );
      await until(() => c.crashes.length === 1, 'the crash');
      expect((c.crashes[0] as StreamError).code).toBe('STATE_INVALID');
      expect(broker.generation('g')).toBe(2);
    });
  });

  describe('consumer groups', () => {
    it('splits partitions on a second join and takes them back when it leaves, telling every member', async () => {
      const { consume, broker } = setup({ t: 4 });
      const a = await consume('g', ['t']);
      expect(a.assignments).toEqual([{ generation: 1, partitions: [0, 1, 2, 3].map((partition) => ({ topic: 't', partition })) }]);

      const b = await consume('g', ['t']);
      await until(() => a.assignments.length === 2, 'a to hear generation 2');
      expect(a.last()?.generation).toBe(2);
      expect(b.assignments.map((x) => x.generation)).toEqual([2]);
      expect(names(a.last()?.partitions)).toEqual(['t/0', 't/2']);
      expect(names(b.last()?.partitions)).toEqual(['t/1', 't/3']);

      await b.consumer.stop();
      await until(() => a.assignments.length === 3, 'a to hear generation 3');
      expect(a.last()).toEqual({ generation: 3, partitions: [0, 1, 2, 3].map((partition) => ({ topic: 't', partition })) });
      expect(b.assignments).toHaveLength(1);
      expect(broker.generation('g')).toBe(3);
    });

    it('tells current members onRevoking before the new generation, and accepts the commits they make then', async () => {
      const { produce, consume, broker, transport } = setup({ t: 2 });
      await produce(...Array.from({ length: 6 }, (_, i) => message('t', null, `v${i}`, i % 2)));
      const consumer = transport.consumer(options('g', ['t']));
      let revokeCommit: Promise<void> | undefined;
      const a = await consume(
        'g',
        ['t'],
        recorder(undefined, () => {
          // Asynchronously, as the runtime does: the commit still belongs to generation 1.
          revokeCommit = Promise.resolve().then(() => consumer.commit([{ topic: 't', partition: 1, offset: '2' }]));
        }),
        {},
        consumer,
      );
      await until(() => a.values().length === 6, 'a to read everything');
      const b = await consume('g', ['t']);
      await until(() => a.last()?.generation === 2, 'a to hear generation 2');
      await revokeCommit;
      expect(a.events).toEqual(['g1', 'revoking', 'g2']);
      expect(b.events).toEqual(['g2']);
      expect(broker.commitHistory('g')).toMatchObject([{ generation: 1, offsets: [{ topic: 't', partition: 1, offset: '2' }] }]);
      await until(() => b.values(1).length === 1, 'b to resume partition 1 after the revoke-time commit');
      expect(b.values(1)).toEqual(['v5']);
    });

    it('rejects commits of a member that acknowledged a rebalance until the rebalance completes', async () => {
      const { consume } = setup({ t: 2 });
      const a = await consume('g', ['t']);
      let late: Promise<StreamError> | undefined;
      const b = await consume(
        'g',
        ['t'],
        recorder(undefined, () => {
          // Runs after a acknowledged (a heard onRevoking first) and before b does: a has "rejoined".
          setImmediate(() => {
            late = rejection(a.consumer.commit([{ topic: 't', partition: 0, offset: '0' }]));
          });
        }),
      );
      await until(() => a.last()?.generation === 2, 'generation 2');
      await consume('g', ['t']);
      await until(() => late !== undefined && b.last()?.generation === 3, 'the late commit and generation 3');
      const error = await late;
      expect(error?.code).toBe('STATE_INVALID');
      expect(error?.message).toMatch(/rebalance is in progress/);
    });

    it('assigns partitions of several topics only to members subscribing them', async () => {
      const { consume } = setup({ a: 2, b: 2 });
      const one = await consume('g', ['a', 'b']);
      const two = await consume('g', ['b']);
      await until(() => one.last()?.generation === 2, 'generation 2');
      expect(names(one.last()?.partitions)).toEqual(['a/0', 'a/1', 'b/1']);
      expect(names(two.last()?.partitions)).toEqual(['b/0']);
    });

    it('restarts every position of a new generation from the committed offsets', async () => {
      const { produce, consume } = setup({ t: 2 });
      await produce(...Array.from({ length: 10 }, (_, i) => message('t', null, `v${i}`, i % 2)));
      const a = await consume('g', ['t']);
      await until(() => a.values().length === 10, 'a to read everything');
      await a.consumer.commit([
        { topic: 't', partition: 0, offset: '3' },
        { topic: 't', partition: 1, offset: '2' },
      ]);
      const b = await consume('g', ['t']);
      await until(() => a.last()?.generation === 2 && a.values(0).length === 7 && b.values(1).length === 3, 'redelivery from the commits');
      // a kept partition 0 and, eager protocol, refetched it from its commit; b took partition 1 from its commit.
      expect(a.values(0).slice(5)).toEqual(['v6', 'v8']);
      expect(b.values(1)).toEqual(['v5', 'v7', 'v9']);
      expect(names(b.last()?.partitions)).toEqual(['t/1']);
    });

    it('checks commits strictly: membership, ownership in the current generation and the log end', async () => {
      const { produce, consume, broker, transport } = setup({ t: 2 });
      await produce(message('t', null, 'x', 0));
      const a = await consume('g', ['t']);
      await a.consumer.commit([{ topic: 't', partition: 0, offset: '1' }]);

      const past = await rejection(a.consumer.commit([{ topic: 't', partition: 0, offset: '2' }]));
      expect(past.code).toBe('STATE_INVALID');
      expect(past.message).toMatch(/past its log end 1/);
      expect((await rejection(a.consumer.commit([{ topic: 't', partition: 0, offset: '-1' }]))).code).toBe('STATE_INVALID');

      const b = await consume('g', ['t']);
      const notOwned = await rejection(b.consumer.commit([{ topic: 't', partition: 0, offset: '0' }]));
      expect(notOwned.code).toBe('STATE_INVALID');
      expect(notOwned.message).toMatch(/t\/0 is not assigned to this member in generation 2/);
      await b.consumer.commit([{ topic: 't', partition: 1, offset: '0' }]);

      await b.consumer.stop();
      expect((await rejection(b.consumer.commit([{ topic: 't', partition: 1, offset: '0' }]))).code).toBe('STATE_INVALID');
      const never = transport.consumer(options('g', ['t']));
      expect((await rejection(never.commit([{ topic: 't', partition: 0, offset: '0' }]))).code).toBe('STATE_INVALID');

      expect(broker.commitHistory('g').map((r) => [r.generation, r.offsets.map((o) => `${o.partition}@${o.offset}`)])).toEqual([
        [1, ['0@1']],
        [2, ['1@0']],
      ]);
      expect(broker.committed('g')).toEqual([
        { topic: 't', partition: 0, offset: '1' },
        { topic: 't', partition: 1, offset: '0' },
      ]);
    });

    it('stops idempotently, hears nothing afterwards, and rejects a second start', async () => {
      const { produce, consume } = setup({ t: 1 });
      const c = await consume('g', ['t']);
      await c.consumer.stop();
      await c.consumer.stop();
      await produce(message('t', null, 'after'));
      await settle();
      expect(c.batches).toHaveLength(0);
      expect((await rejection(c.consumer.start(recorder().listener))).code).toBe('STATE_INVALID');
    });

    it('rejects subscribing a topic that does not exist', async () => {
      const { transport, broker } = setup({ t: 1 });
      const error = await rejection(transport.consumer(options('g', ['t', 'nope'])).start(recorder().listener));
      expect(error.code).toBe('TOPIC_MISSING');
      expect(error.context.topic).toBe('nope');
      expect(broker.generation('g')).toBe(0);
    });
  });

  describe('transactions', () => {
    it('makes messages and offsets visible together on commit', async () => {
      const { broker, transport, consume, produce } = setup({ in: 1, out: 2 });
      await produce(message('in', null, 'src'));
      const reader = await consume('reader', ['out']);
      const producer = transport.producer({ transactionalId: 'app.in.0' });
      await producer.connect();
      const tx = await producer.transaction();
      await tx.send([message('out', 'a', 'r1'), message('out', 'b', 'r2')]);
      await tx.sendOffsets('app', [{ topic: 'in', partition: 0, offset: '1' }]);
      await settle();
      expect(broker.messages('out')).toHaveLength(0);
      expect(broker.committed('app')).toEqual([]);
      expect(reader.batches).toHaveLength(0);

      await tx.commit();
      expect(
        broker
          .messages('out')
          .map((m) => m.value?.toString())
          .sort(),
      ).toEqual(['r1', 'r2']);
      expect(broker.committed('app')).toEqual([{ topic: 'in', partition: 0, offset: '1' }]);
      expect(broker.commitHistory('app')).toMatchObject([{ transactionalId: 'app.in.0', memberId: null }]);
      await until(() => reader.values().length === 2, 'the reader to see the outputs');
      expect((await rejection(tx.send([message('out', null, 'late')]))).code).toBe('STATE_INVALID');
    });

    it('leaves nothing behind on abort and allows the next transaction', async () => {
      const { broker, transport } = setup({ in: 1, out: 1 });
      const producer = transport.producer({ transactionalId: 'x' });
      await producer.connect();
      const tx = await producer.transaction();
      await tx.send([message('out', null, 'dropped')]);
      await tx.sendOffsets('app', [{ topic: 'in', partition: 0, offset: '0' }]);
      expect((await rejection(producer.transaction())).code).toBe('STATE_INVALID');
      await tx.abort();
      expect(broker.messages('out')).toEqual([]);
      expect(broker.committed('app')).toEqual([]);
      expect(broker.commitHistory('app')).toEqual([]);
      expect((await rejection(tx.commit())).code).toBe('STATE_INVALID');
      const next = await producer.transaction();
      await next.send([message('out', null, 'kept')]);
      await next.commit();
      expect(broker.messages('out').map((m) => m.value?.toString())).toEqual(['kept']);
    });

    it('fences an older producer with the same transactional id', async () => {
      const { broker, transport } = setup({ out: 1 });
      const zombie = transport.producer({ transactionalId: 'app.in.0' });
      await zombie.connect();
      const zombieTx = await zombie.transaction();
      await zombieTx.send([message('out', null, 'zombie')]);

      const fresh = transport.producer({ transactionalId: 'app.in.0' });
      await fresh.connect();
      const fenced = await rejection(zombieTx.commit());
      expect(fenced.code).toBe('TRANSPORT_FAILED');
      expect(fenced.message).toMatch(/fenced/);
      expect(fenced.context).toMatchObject({ fenced: true, transactionalId: 'app.in.0' });
      expect((await rejection(zombie.transaction())).code).toBe('TRANSPORT_FAILED');
      expect((await rejection(zombieTx.abort())).message).toMatch(/fenced/);

      const tx = await fresh.transaction();
      await tx.send([message('out', null, 'fresh')]);
      await tx.commit();
      expect(broker.messages('out').map((m) => m.value?.toString())).toEqual(['fresh']);
      await zombie.disconnect();
    });

    it('refuses transactions on plain producers and plain sends on transactional ones', async () => {
      const { transport } = setup({ out: 1 });
      const plain = transport.producer();
      await plain.connect();
      expect((await rejection(plain.transaction())).code).toBe('STATE_INVALID');
      const transactional = transport.producer({ transactionalId: 't' });
      await transactional.connect();
      expect((await rejection(transactional.send([message('out', null, 'x')]))).code).toBe('STATE_INVALID');
      await plain.disconnect();
      expect((await rejection(plain.send([message('out', null, 'x')]))).code).toBe('TRANSPORT_FAILED');
    });

    it('rejects unknown topics inside a transaction', async () => {
      const { transport } = setup({ out: 1 });
      const producer = transport.producer({ transactionalId: 't' });
      await producer.connect();
      const tx = await producer.transaction();
      expect((await rejection(tx.send([message('nope', null, 'x')]))).code).toBe('TOPIC_MISSING');
      expect((await rejection(tx.sendOffsets('g', [{ topic: 'nope', partition: 0, offset: '0' }]))).code).toBe('TOPIC_MISSING');
      await tx.abort();
    });
  });

  describe('unknown topics and admin', () => {
    it('rejects sends to and reads of a topic that does not exist', async () => {
      const { produce, broker } = setup({});
      const error = await rejection(produce(message('missing', 'k', 'v')));
      expect(error.code).toBe('TOPIC_MISSING');
      expect(error.context.topic).toBe('missing');
      expect(thrown(() => broker.messages('missing')).code).toBe('TOPIC_MISSING');
      expect(thrown(() => broker.endOffsets('missing')).code).toBe('TOPIC_MISSING');
    });

    it('does not append any message of a send that names an unknown topic', async () => {
      const { produce, broker } = setup({ t: 1 });
      await rejection(produce(message('t', null, 'a'), message('missing', null, 'b')));
      expect(broker.messages('t')).toEqual([]);
    });

    it('creates missing topics, lists them and reports end and committed offsets', async () => {
      const { transport, produce, consume } = setup({ existing: 1 });
      const admin = transport.admin();
      await admin.connect();
      expect(
        await admin.createTopics([
          { name: 'existing', partitions: 5 },
          { name: 'fresh', partitions: 2 },
        ]),
      ).toEqual(['fresh']);
      expect(await admin.listTopics()).toEqual(['existing', 'fresh']);
      await produce(message('fresh', null, 'a', 1), message('fresh', null, 'b', 1));
      expect(await admin.endOffsets('fresh')).toEqual([
        { topic: 'fresh', partition: 0, offset: '0' },
        { topic: 'fresh', partition: 1, offset: '2' },
      ]);
      const c = await consume('g', ['fresh']);
      await c.consumer.commit([{ topic: 'fresh', partition: 1, offset: '2' }]);
      expect(await admin.committedOffsets('g', 'fresh')).toEqual([{ topic: 'fresh', partition: 1, offset: '2' }]);
      expect(await admin.committedOffsets('g', 'existing')).toEqual([]);
      expect((await rejection(admin.createTopics([{ name: 'bad', partitions: 0 }]))).code).toBe('CONFIG_INVALID');
      await admin.disconnect();
    });
  });

  describe('fault injection', () => {
    it('fails the next commits and then lets them through', async () => {
      const { consume, broker, produce } = setup({ t: 1 });
      await produce(message('t', null, 'x'));
      const c = await consume('g', ['t']);
      broker.failNext('commit', 1);
      const error = await rejection(c.consumer.commit([{ topic: 't', partition: 0, offset: '1' }]));
      expect(error.code).toBe('TRANSPORT_FAILED');
      expect(broker.committed('g')).toEqual([]);
      await c.consumer.commit([{ topic: 't', partition: 0, offset: '1' }]);
      expect(broker.committed('g')).toEqual([{ topic: 't', partition: 0, offset: '1' }]);
    });

    it('fails a transaction commit without applying it, so it can still be aborted', async () => {
      const { transport, broker } = setup({ out: 1 });
      const remove = broker.inject('transaction', (e) => {
        if (e.messages.length > 0) throw new Error('broker unavailable');
      });
      const producer = transport.producer({ transactionalId: 't' });
      await producer.connect();
      const tx = await producer.transaction();
      await tx.send([message('out', null, 'x')]);
      await expect(tx.commit()).rejects.toThrow('broker unavailable');
      await tx.abort();
      expect(broker.messages('out')).toEqual([]);
      remove();
    });

    it('crashes a consumer whose fetch fails; the group rebalances without it', async () => {
      const { consume, broker, produce } = setup({ t: 2 });
      const a = await consume('g', ['t']);
      const b = await consume('g', ['t']);
      broker.failNext('fetch', 1, new Error('disk on fire'));
      // Only partition 1, b's, has anything to fetch.
      await produce(message('t', null, 'x', 1));
      await until(() => b.crashes.length === 1, 'b to crash');
      expect(b.crashes[0]?.message).toBe('disk on fire');
      await until(() => a.values().length === 1, 'a to take over and read partition 1');
      expect(a.last()).toEqual({ generation: 3, partitions: [0, 1].map((partition) => ({ topic: 't', partition })) });
      expect(b.batches).toHaveLength(0);
    });
  });
});
