/**
 * Properties of tables on the memory transport (issue #18): whatever the interleaving of input, crashes
 * and rebalances, the table a fresh restore reads from the changelog is the fold of the input, exactly,
 * under at-least-once and under exactly-once.
 *
 * A crash here is abrupt: a {@link KillableTransport} cuts an instance off the broker at an arbitrary
 * moment (between two records, between a record's changelog write and its offset commit, between the
 * writes of its two tables, in the middle of a rebalance...): from then on none of its sends, transactions
 * or commits reach the broker and it leaves its group at once, as a SIGKILLed process whose session
 * expired. A graceful stop (`app.stop()`) is the rebalance case: it drains and commits, then leaves.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { silentLogger } from './logger.js';
import { noInstrumentation } from './runtime/instrumentation.js';
import { restorePartition } from './runtime/restore.js';
import { SOURCE_OFFSET_HEADER, Table, changelogTopicName, type AnyTable } from './table.js';
import { murmur2 } from './transport/memory/partitioner.js';
import { defineTopic } from './topic.js';
import { MemoryBroker, MemoryTransport } from './testing/index.js';
import { StreamError } from './errors.js';
import type {
  ConsumerListener,
  ConsumerOptions,
  OutgoingMessage,
  PartitionOffset,
  ProducerOptions,
  ReadPartitionOptions,
  TopicPartition,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
  TransportTransaction,
} from './transport/transport.js';
import type { StoredMessage } from './transport/memory/index.js';

/**
 * One instance's view of a shared memory broker, which {@link kill} cuts off at once: every later send,
 * transaction operation and commit fails (before reaching the broker), and its consumer leaves the group
 * without another word to its listener. What the instance wrote before the kill stays.
 */
class KillableTransport implements Transport {
  readonly name = 'memory';
  readonly #inner: MemoryTransport;
  readonly #consumers: TransportConsumer[] = [];
  #killed = false;

  constructor(broker: MemoryBroker, groupMetadata: boolean) {
    this.#inner = new MemoryTransport(broker, { maxBatchSize: 7, groupMetadata });
  }

  kill(): void {
    this.#killed = true;
    // MemoryConsumer.stop leaves the group synchronously: no rebalance can complete before it.
    for (const consumer of this.#consumers) void consumer.stop();
  }

  #alive(operation: string): void {
    if (this.#killed) throw new StreamError('TRANSPORT_FAILED', `killed instance: ${operation}`);
  }

  readPartition(options: ReadPartitionOptions): Promise<void> {
    return this.#inner.readPartition(options);
  }

  admin(): TransportAdmin {
    return this.#inner.admin();
  }

  consumer(options: ConsumerOptions): TransportConsumer {
    const inner = this.#inner.consumer(options);
    this.#consumers.push(inner);
    const alive = (operation: string) => this.#alive(operation);
    return {
      start: async (listener: ConsumerListener) => {
        alive('start');
        await inner.start(listener);
      },
      pause: (partitions: readonly TopicPartition[]) => inner.pause(partitions),
      resume: (partitions: readonly TopicPartition[]) => inner.resume(partitions),
      seek: (position: PartitionOffset) => inner.seek(position),
      commit: async (offsets: readonly PartitionOffset[]) => {
        alive('commit');
        await inner.commit(offsets);
      },
      stop: () => inner.stop(),
      ...(inner.groupMetadata ? { groupMetadata: () => inner.groupMetadata?.() } : {}),
    };
  }

  producer(options?: ProducerOptions): TransportProducer {
    const inner = this.#inner.producer(options);
    const alive = (operation: string) => this.#alive(operation);
    return {
      connect: async () => {
        alive('connect');
        await inner.connect();
      },
      send: async (messages: readonly OutgoingMessage[]) => {
        alive('send');
        await inner.send(messages);
      },
      transaction: async (): Promise<TransportTransaction> => {
        alive('transaction');
        const tx = await inner.transaction();
        return {
          send: async (messages) => {
            alive('transaction send');
            await tx.send(messages);
          },
          sendOffsets: async (groupId, offsets, group) => {
            alive('sendOffsets');
            await tx.sendOffsets(groupId, offsets, group);
          },
          commit: async () => {
            alive('transaction commit');
            await tx.commit();
          },
          abort: () => tx.abort(),
        };
      },
      disconnect: () => inner.disconnect(),
    };
  }
}

const Input = z.object({ amount: z.number().int(), reset: z.boolean() });
type InputRecord = { readonly key: string; readonly amount: number; readonly reset: boolean };

const countsOptions = { key: z.string(), value: z.number().int(), default: 0 };
const sumsOptions = { key: z.string(), value: z.number().int(), default: 0 };

/**
 * How the app commits: at least once, exactly-once with a transactional producer per partition (as on
 * kafkajs), or exactly-once with one per consumer, its offsets checked against the group's generation
 * (KIP-447, as on platformatic).
 */
type Mode = 'at-least-once' | 'exactly-once' | 'exactly-once per consumer';
const MODES: readonly Mode[] = ['at-least-once', 'exactly-once', 'exactly-once per consumer'];

interface Instance {
  readonly app: App;
  readonly transport: KillableTransport;
}

/**
 * One instance of the app under test: per key, a table of counts and one of sums (two tables, so two
 * changelog writes per record that a crash can separate). A `reset` record deletes the key from both.
 */
function instance(broker: MemoryBroker, id: string, topicName: string, mode: Mode, heartbeatIntervalMs = 20): Instance {
  const transport = new KillableTransport(broker, mode === 'exactly-once per consumer');
  const exactlyOnce = mode !== 'at-least-once';
  const app = createApp({ id, transport, logger: silentLogger(), commitIntervalMs: 15, shutdownTimeoutMs: 2000, heartbeatIntervalMs });
  const topic = defineTopic({ name: topicName, key: z.string(), value: Input });
  const counts = app.table('counts', countsOptions);
  const sums = app.table('sums', sumsOptions);
  app.agent(topic, { tables: [counts, sums], exactlyOnce, concurrency: 3 }, async (value, ctx) => {
    const c = ctx.table(counts);
    const s = ctx.table(sums);
    if (value.reset) {
      c.delete(ctx.key);
      s.delete(ctx.key);
      return;
    }
    c.set(ctx.key, (c.get(ctx.key) ?? 0) + 1);
    s.set(ctx.key, (s.get(ctx.key) ?? 0) + value.amount);
  });
  return { app, transport };
}

/** The reference: a plain fold of the input, per key (a reset forgets the key). */
function fold(records: readonly InputRecord[]): { counts: Map<string, number>; sums: Map<string, number> } {
  const counts = new Map<string, number>();
  const sums = new Map<string, number>();
  for (const r of records) {
    if (r.reset) {
      counts.delete(r.key);
      sums.delete(r.key);
    } else {
      counts.set(r.key, (counts.get(r.key) ?? 0) + 1);
      sums.set(r.key, (sums.get(r.key) ?? 0) + r.amount);
    }
  }
  return { counts, sums };
}

/** The table a fresh instance restores from the changelog (the runtime's own restore), with each partition's applied source offset. */
async function restored(broker: MemoryBroker, id: string, name: string, partitions: number): Promise<{ entries: Map<string, number>; applied: number[] }> {
  const transport = new MemoryTransport(broker);
  const admin = transport.admin();
  await admin.connect();
  const table: AnyTable = new Table(name, name === 'counts' ? countsOptions : sumsOptions);
  const usage = { table, changelog: changelogTopicName(id, name), partitions };
  const entries = new Map<string, number>();
  const applied: number[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const store = await restorePartition(transport, admin, usage, partition, new AbortController().signal, noInstrumentation);
    for (const { key, value } of store.entries.values()) entries.set(key as string, value as number);
    applied.push(store.appliedOffset);
  }
  await admin.disconnect();
  return { entries, applied };
}

/**
 * Entry by entry, in changelog order, what no crash or rebalance may break even for a moment: each entry
 * is the previous value of its key (0 when absent or deleted) updated by exactly the source record its
 * header names, of the same key and partition. Returns the first violations.
 */
function entryByEntry(broker: MemoryBroker, changelog: string, source: string, update: (previous: number, record: z.infer<typeof Input>) => number): string[] {
  const problems: string[] = [];
  const partitions = broker.endOffsets(changelog).length;
  for (let partition = 0; partition < partitions; partition++) {
    const inputs = broker.messages(source, partition);
    const values = new Map<string, number>();
    // Every record writes one entry, in offset order: none twice (an update applied twice, or a zombie's
    // late write), none missing.
    const sources = broker.messages(changelog, partition).map((m) => Number(m.headers[SOURCE_OFFSET_HEADER]?.toString()));
    if (sources.some((offset, i) => offset !== i) || sources.length !== inputs.length) {
      problems.push(`${changelog}/${partition}: entries of source offsets ${sources.join(',')}, not 0 to ${inputs.length - 1}`);
    }
    for (const m of broker.messages(changelog, partition)) {
      const key = m.key!.toString();
      const offset = Number(m.headers[SOURCE_OFFSET_HEADER]?.toString());
      const record: StoredMessage | undefined = inputs[offset];
      const where = `${changelog}/${partition}@${m.offset} (source offset ${offset}) ${key}`;
      if (!record || record.key?.toString() !== key) {
        problems.push(`${where}: no source record of that key`);
        continue;
      }
      const input = Input.parse(JSON.parse(record.value!.toString()));
      const expected = input.reset ? null : update(values.get(key) ?? 0, input);
      const actual = m.value === null ? null : (JSON.parse(m.value.toString()) as number);
      if (actual !== expected) problems.push(`${where}: ${values.get(key) ?? 0} -> ${actual}, expected ${expected}`);
      if (actual === null) values.delete(key);
      else values.set(key, actual);
    }
  }
  return problems.slice(0, 5);
}

/**
 * Waits until the group committed every record of `topic` (the changelog writes of each came first),
 * running `meanwhile` between two looks.
 */
async function allCommitted(broker: MemoryBroker, group: string, topic: string, meanwhile?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const committed = new Map(broker.committed(group).map((c) => [`${c.topic}/${c.partition}`, Number(c.offset)]));
    const behind = broker.endOffsets(topic).filter((e) => (committed.get(`${topic}/${e.partition}`) ?? 0) < Number(e.offset));
    if (behind.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `not committed after 15 s: ${behind.map((e) => `${e.partition}: ${committed.get(`${topic}/${e.partition}`) ?? 0} of ${e.offset}`).join(', ')}`,
      );
    }
    await meanwhile?.();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

type Step =
  | { readonly kind: 'send'; readonly records: readonly { key: number; amount: number; reset: boolean }[] }
  | { readonly kind: 'wait'; readonly turns: number }
  | { readonly kind: 'join' }
  | { readonly kind: 'fault' }
  | { readonly kind: 'leave' | 'kill' | 'expel'; readonly which: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      records: fc.array(
        fc.record({ key: fc.integer({ min: 0, max: 7 }), amount: fc.integer({ min: -3, max: 9 }), reset: fc.integer({ min: 0, max: 9 }).map((n) => n === 0) }),
        { minLength: 1, maxLength: 30 },
      ),
    }),
  },
  // Turns of the event loop: lets the instances get part of the way through what was sent, so that the
  // next kill or rebalance lands mid-way (0 lands it before anything was fetched).
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('wait' as const), turns: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('join' as const) }) },
  // The next changelog write (at least once) or transaction commit (exactly once) fails.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fault' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), which: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('kill' as const), which: fc.nat() }) },
);

/**
 * The steps of a run. An expelled member (`MemoryBroker.expel`: its session expired while it stalled) is
 * a zombie until it hears of it: what the runtime already holds of its partitions it still processes.
 * Under exactly-once the new owner's claim fences it; under at-least-once nothing can stop its changelog
 * writes, which may land after the new owner's restore (the limitation the README states; the property
 * finds it at once: `send k0, expel, join` writes source offset 0 twice), so only exactly-once runs expel.
 */
const steps = (exactlyOnce: boolean): fc.Arbitrary<Step[]> => fc.array(exactlyOnce ? fc.oneof(step, expel) : step, { minLength: 1, maxLength: 20 });

const expel: fc.Arbitrary<Step> = fc.record({ kind: fc.constant('expel' as const), which: fc.nat() });

let seq = 0;

async function run(mode: Mode, partitions: number, steps: readonly Step[]): Promise<void> {
  const exactlyOnce = mode !== 'at-least-once';
  const broker = new MemoryBroker();
  seq += 1;
  const topic = `amounts-${seq}`;
  const id = `summer-${seq}`;
  broker.createTopic(topic, partitions);
  const feeder = new MemoryTransport(broker).producer();
  await feeder.connect();
  const sent: InputRecord[] = [];
  const running: Instance[] = [];
  const dead: Instance[] = [];
  const start = async () => {
    const next = instance(broker, id, topic, mode);
    running.push(next);
    await next.app.start();
  };
  // What `app.run()` does with an app that failed (a changelog write failed): stops it; here another
  // takes its place.
  const replaceFailed = async () => {
    for (const failed of running.filter((i) => i.app.state === 'failed')) {
      running.splice(running.indexOf(failed), 1);
      await failed.app.stop();
    }
    if (running.length === 0) await start();
  };
  try {
    await start();
    for (const s of steps) {
      if (s.kind === 'send') {
        const records = s.records.map((r) => ({ key: `k${r.key}`, amount: r.amount, reset: r.reset }));
        sent.push(...records);
        await feeder.send(
          records.map((r) => ({ topic, key: Buffer.from(r.key), value: Buffer.from(JSON.stringify({ amount: r.amount, reset: r.reset })), headers: {} })),
        );
      } else if (s.kind === 'wait') {
        for (let i = 0; i < s.turns; i++) await new Promise((resolve) => setImmediate(resolve));
      } else if (s.kind === 'fault') {
        let armed = true;
        const changelogs = new Set([changelogTopicName(id, 'counts'), changelogTopicName(id, 'sums')]);
        const fail = () => {
          if (!armed) return;
          armed = false;
          throw new StreamError('TRANSPORT_FAILED', 'injected fault');
        };
        if (exactlyOnce) broker.inject('transaction', fail);
        else broker.inject('send', (event) => event.messages.some((m) => changelogs.has(m.topic)) && fail());
      } else if (s.kind === 'expel') {
        const members = broker.members(id);
        if (members.length > 0) broker.expel(id, members[s.which % members.length]!);
      } else if (s.kind === 'join') {
        if (running.length < 3) await start();
      } else {
        const [victim] = running.splice(s.which % running.length, 1);
        if (s.kind === 'kill') {
          victim!.transport.kill();
          dead.push(victim!);
        } else {
          await victim!.app.stop();
        }
        // A group of one to three: the last one gone, another takes over.
        if (running.length === 0) await start();
      }
      await replaceFailed();
    }
    // A fault armed by the last steps may fail an instance meanwhile.
    await allCommitted(broker, id, topic, replaceFailed);
  } finally {
    await Promise.all([...running, ...dead].map((i) => i.app.stop().catch(() => undefined)));
  }
  const expected = fold(sent);
  const problems = [
    ...entryByEntry(broker, changelogTopicName(id, 'counts'), topic, (previous) => previous + 1),
    ...entryByEntry(broker, changelogTopicName(id, 'sums'), topic, (previous, r) => previous + r.amount),
  ];
  expect(problems, problems.join('; ')).toEqual([]);
  const counts = await restored(broker, id, 'counts', partitions);
  const sums = await restored(broker, id, 'sums', partitions);
  expect(counts.entries).toEqual(expected.counts);
  expect(sums.entries).toEqual(expected.sums);
  // Every record updates both tables, so each partition's restore remembers its last record as applied.
  const lastOffsets = broker.endOffsets(topic).map((e) => Number(e.offset) - 1);
  expect(counts.applied).toEqual(lastOffsets);
  expect(sums.applied).toEqual(lastOffsets);
}

describe('tables: properties under crashes and rebalances (memory transport)', () => {
  for (const mode of MODES) {
    it(`the restored tables equal a fold of the input, entry by entry, whatever the interleaving (${mode})`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 4 }), steps(mode !== 'at-least-once'), (partitions, list) => run(mode, partitions, list)),
        { numRuns: 150 },
      );
    }, 60_000);
  }
});

describe('tables: a failed changelog write', () => {
  it('regression: loses no update, though the failed record is retried and later records of its partition write on', async () => {
    const broker = new MemoryBroker();
    const topic = 'amounts-failed-write';
    const id = 'summer-failed-write';
    broker.createTopic(topic, 1);
    const changelog = changelogTopicName(id, 'counts');
    let failed = 0;
    const remove = broker.inject('send', (event) => {
      if (failed === 0 && event.messages.some((m) => m.topic === changelog)) {
        failed += 1;
        throw new StreamError('TRANSPORT_FAILED', 'injected changelog write failure');
      }
    });
    // The first record's key is written once only: a later entry of the partition cannot carry its update.
    const records: InputRecord[] = Array.from({ length: 40 }, (_, i) => ({ key: i === 0 ? 'first' : `k${i % 5}`, amount: i, reset: false }));
    const feeder = new MemoryTransport(broker).producer();
    await feeder.connect();
    await feeder.send(
      records.map((r) => ({ topic, key: Buffer.from(r.key), value: Buffer.from(JSON.stringify({ amount: r.amount, reset: r.reset })), headers: {} })),
    );
    const first = instance(broker, id, topic, 'at-least-once');
    await first.app.start();
    for (let i = 0; i < 200 && first.app.state !== 'failed'; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(first.app.state).toBe('failed');
    // `app.run()` notices the failure within 500 ms, then stops gracefully, with a final commit. Meanwhile
    // the failed record is retried (after 100 ms): its update is in the store already, so it writes nothing.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await first.app.stop();
    expect(broker.committed(id)).toEqual([]);
    remove();
    const second = instance(broker, id, topic, 'at-least-once');
    await second.app.start();
    await allCommitted(broker, id, topic);
    await second.app.stop();
    expect(failed).toBe(1);
    expect((await restored(broker, id, 'counts', 1)).entries).toEqual(fold(records).counts);
    expect((await restored(broker, id, 'sums', 1)).entries).toEqual(fold(records).sums);
  });
});

describe('tables: a member the group removed without telling it', () => {
  for (const mode of MODES) {
    it(`regression: does not keep its table when it rejoins and gets the partition back (${mode})`, async () => {
      const broker = new MemoryBroker();
      const slug = mode.replaceAll(' ', '-');
      const topic = `amounts-expelled-${slug}`;
      const id = `summer-expelled-${slug}`;
      broker.createTopic(topic, 2);
      // A key of partition 1, which the second member to join owns.
      const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => (murmur2(Buffer.from(k)) & 0x7fffffff) % 2 === 1)!;
      const feeder = new MemoryTransport(broker).producer();
      await feeder.connect();
      const sent: InputRecord[] = [];
      const send = async (n: number) => {
        const records = Array.from({ length: n }, (_, i) => ({ key, amount: i, reset: false }));
        sent.push(...records);
        await feeder.send(
          records.map((r) => ({ topic, key: Buffer.from(r.key), value: Buffer.from(JSON.stringify({ amount: r.amount, reset: false })), headers: {} })),
        );
        await allCommitted(broker, id, topic);
      };
      // Heartbeats every 300 ms: the removed member finds out that late.
      const y = instance(broker, id, topic, mode, 300);
      await y.app.start();
      const x = instance(broker, id, topic, mode, 300);
      await x.app.start();
      await send(10);
      const [, xMember] = broker.members(id);
      // x stalls and its session expires: y takes both partitions and counts 10 more of x's partition.
      expect(broker.expel(id, xMember!)).toBe(true);
      await send(10);
      // x comes back as a new member and gets its partition again (the round robin gives the second member
      // partition 1): it must restore it, not go on from its own count of 10.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(broker.members(id)).toHaveLength(2);
      await send(10);
      await Promise.all([x.app.stop(), y.app.stop()]);
      expect((await restored(broker, id, 'counts', 2)).entries).toEqual(fold(sent).counts);
      expect((await restored(broker, id, 'sums', 2)).entries).toEqual(fold(sent).sums);
    });
  }
});
