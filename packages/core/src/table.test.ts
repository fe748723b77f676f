import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { defineTopic } from './topic.js';
import { SOURCE_OFFSET_HEADER, Table, changelogTopicName } from './table.js';
import type { OutgoingMessage } from './transport/transport.js';
import { MemoryBroker, MemoryTransport } from './testing/index.js';
import { eventually, settled, silent, unique } from './table-test-support.js';

interface Counting {
  readonly app: App;
  readonly changelog: string;
}

/** A counting app: counts records per key in a table, one instance of group `id` on `broker`. */
function countingApp(broker: MemoryBroker, id: string, topicName: string, options: { exactlyOnce?: boolean; commitIntervalMs?: number } = {}): Counting {
  const topic = defineTopic({ name: topicName, key: z.string(), value: z.object({ n: z.number() }) });
  const app = createApp({
    id,
    transport: new MemoryTransport(broker, { maxBatchSize: 50 }),
    commitIntervalMs: options.commitIntervalMs ?? 20,
    logger: silent(),
  });
  const counts = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
  app.agent(topic, { tables: [counts], exactlyOnce: options.exactlyOnce ?? false }, async (_value, ctx) => {
    const table = ctx.table(counts);
    table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
  });
  return { app, changelog: changelogTopicName(id, 'counts') };
}

/** The table as its changelog holds it: the last value of every key (what compaction keeps). */
function foldChangelog(broker: MemoryBroker, changelog: string): Map<string, number> {
  const table = new Map<string, number>();
  for (const m of broker.messages(changelog)) {
    const key = m.key!.toString();
    if (m.value === null) table.delete(key);
    else table.set(key, JSON.parse(m.value.toString()) as number);
  }
  return table;
}

async function produce(broker: MemoryBroker, topic: string, keys: readonly string[], transport = new MemoryTransport(broker)): Promise<void> {
  const producer = transport.producer();
  await producer.connect();
  await producer.send(keys.map((key) => ({ topic, key: Buffer.from(key), value: Buffer.from('{"n":1}'), headers: {} })));
}

function reference(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/** Stops an instance as a crash would: nothing it processed since its last commit is committed. */
async function crash(broker: MemoryBroker, app: App): Promise<void> {
  const removeCommit = broker.failNext('commit', 1_000_000);
  const removeTx = broker.failNext('transaction', 1_000_000);
  await app.stop();
  removeCommit();
  removeTx();
}

describe('tables on the memory transport', () => {
  it('counts per key, writes a compacted changelog with the source offset, and restores it on restart', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, 3);
    const first = countingApp(broker, id, topic);
    await first.app.start();
    const keys = Array.from({ length: 300 }, (_, i) => `k${(i * 7) % 23}`);
    await produce(broker, topic, keys.slice(0, 150));
    await settled(broker, id, topic);
    await first.app.stop();
    expect(broker.endOffsets(first.changelog)).toHaveLength(3);
    const entry = broker.messages(first.changelog)[0]!;
    expect(entry.headers[SOURCE_OFFSET_HEADER]?.toString()).toMatch(/^\d+$/);
    // Every entry lies in the changelog partition of its source partition: the key hashes there.
    const second = countingApp(broker, id, topic);
    await second.app.start();
    await produce(broker, topic, keys.slice(150));
    await settled(broker, id, topic);
    await second.app.stop();
    expect(foldChangelog(broker, first.changelog)).toEqual(reference(keys));
  });

  it('fails the start when the changelog has another partition count than the source', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, 3);
    broker.createTopic(changelogTopicName(id, 'counts'), 2);
    const { app } = countingApp(broker, id, topic);
    await expect(app.start()).rejects.toThrow(/changelog .* has 2 partitions but its source topic .* has 3/);
  });

  it('fails the start when one table is used over topics that are not co-partitioned', async () => {
    const broker = new MemoryBroker();
    const [a, b] = [unique('a'), unique('b')];
    broker.createTopic(a, 3);
    broker.createTopic(b, 4);
    const app = createApp({ id: unique('app'), transport: new MemoryTransport(broker), logger: silent() });
    const t = app.table('t', { key: z.string(), value: z.number() });
    const handler = async () => undefined;
    app.agent(defineTopic({ name: a, value: z.unknown() }), { tables: [t] }, handler);
    app.agent(defineTopic({ name: b, value: z.unknown() }), { tables: [t] }, handler);
    await expect(app.start()).rejects.toThrow(/not co-partitioned/);
  });

  it('refuses a key of another partition inside a handler', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    broker.createTopic(topic, 4);
    const app = createApp({ id: unique('app'), transport: new MemoryTransport(broker), logger: silent(), commitIntervalMs: 20 });
    const t = app.table('t', { key: z.string(), value: z.number() });
    const errors: string[] = [];
    app.agent(defineTopic({ name: topic, value: z.unknown() }), { tables: [t], deadLetter: false, retry: { attempts: 1 } }, async (_v, ctx) => {
      try {
        for (let i = 0; i < 20; i++) ctx.table(t).get(`other-${i}`);
      } catch (error) {
        errors.push((error as Error).message);
      }
    });
    await app.start();
    await produce(broker, topic, ['x']);
    await eventually(() => expect(errors[0]).toMatch(/belongs to partition \d, but this record's partition is \d/));
    await app.stop();
  });

  for (const exactlyOnce of [false, true]) {
    it(`keeps counts exact across a crash before commit and a restart (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
      const broker = new MemoryBroker();
      const topic = unique('clicks');
      const id = unique('counter');
      broker.createTopic(topic, 3);
      const keys = Array.from({ length: 400 }, (_, i) => `k${i % 17}`);
      const first = countingApp(broker, id, topic, { exactlyOnce, commitIntervalMs: 60_000 });
      await first.app.start();
      await produce(broker, topic, keys.slice(0, 200));
      // Processed (and at-least-once: its changelog written), never committed.
      await eventually(() => expect(foldChangelog(broker, first.changelog).size > 0 || exactlyOnce).toBe(true));
      await eventually(() => expect(first.app.health().agents[0]!.inFlight).toBe(0));
      await crash(broker, first.app);
      const second = countingApp(broker, id, topic, { exactlyOnce });
      await second.app.start();
      await produce(broker, topic, keys.slice(200));
      await settled(broker, id, topic);
      await second.app.stop();
      expect(foldChangelog(broker, first.changelog)).toEqual(reference(keys));
    });
  }

  it('is not ready while restoring, and a rebalance during the restore aborts it cleanly', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, 2);
    const keys = Array.from({ length: 4000 }, (_, i) => `k${i % 2000}`);
    const first = countingApp(broker, id, topic);
    await first.app.start();
    await produce(broker, topic, keys);
    await settled(broker, id, topic);
    await first.app.stop();
    const a = countingApp(broker, id, topic);
    await a.app.start();
    await eventually(() => expect(a.app.health().partitions.some((p) => p.restoring)).toBe(true), 5000);
    expect(a.app.ready).toBe(false);
    // Joins while `a` restores: the group rebalances and `a`'s restores in progress are dropped.
    const b = countingApp(broker, id, topic);
    await b.app.start();
    await produce(broker, topic, keys.slice(0, 500));
    await settled(broker, id, topic);
    await eventually(() => expect(a.app.ready && b.app.ready).toBe(true));
    await Promise.all([a.app.stop(), b.app.stop()]);
    expect(foldChangelog(broker, first.changelog)).toEqual(reference([...keys, ...keys.slice(0, 500)]));
  });

  for (const exactlyOnce of [false, true]) {
    it(`property: interleaved updates, crashes and rebalances leave the table equal to a fold of the input (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
      const step = fc.oneof(
        fc.record({ kind: fc.constant('send' as const), keys: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 40 }) }),
        fc.record({ kind: fc.constantFrom('crash' as const, 'stop' as const, 'join' as const) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
          const broker = new MemoryBroker();
          const topic = unique('clicks');
          const id = unique('counter');
          broker.createTopic(topic, 3);
          const sent: string[] = [];
          let running: Counting[] = [countingApp(broker, id, topic, { exactlyOnce })];
          await running[0]!.app.start();
          for (const s of steps) {
            if (s.kind === 'send') {
              const keys = s.keys.map((k) => `k${k}`);
              sent.push(...keys);
              await produce(broker, topic, keys);
              await new Promise((r) => setTimeout(r, 5));
            } else if (s.kind === 'join') {
              const next = countingApp(broker, id, topic, { exactlyOnce });
              await next.app.start();
              running.push(next);
            } else {
              const victim = running.shift()!;
              if (s.kind === 'crash') await crash(broker, victim.app);
              else await victim.app.stop();
              if (running.length === 0) {
                const next = countingApp(broker, id, topic, { exactlyOnce });
                await next.app.start();
                running = [next];
              }
            }
          }
          await settled(broker, id, topic);
          await Promise.all(running.map((r) => r.app.stop()));
          expect(foldChangelog(broker, changelogTopicName(id, 'counts'))).toEqual(reference(sent));
        }),
        { numRuns: 15 },
      );
    }, 120_000);
  }
});

describe('changelog writes of one partition', () => {
  it('go one produce at a time, in order, whole records of at most 1,000 entries each', async () => {
    const table = new Table('counts', { key: z.string(), value: z.number() });
    const entry = (n: number): OutgoingMessage => ({ topic: 'changelog', partition: 0, key: Buffer.from(`k${n}`), value: Buffer.from(String(n)), headers: {} });
    const produced: number[][] = [];
    let inFlight = 0;
    let release: () => void = () => undefined;
    const produce = (messages: readonly OutgoingMessage[]): Promise<void> => {
      expect(inFlight).toBe(0);
      inFlight += 1;
      produced.push(messages.map((m) => Number(m.value!.toString())));
      return new Promise<void>((resolve) => (release = resolve)).then(() => void (inFlight -= 1));
    };
    // Record 0 goes out alone; 1,500 records of one entry and one record of three queue behind it.
    const acks = [table.write(0, [entry(0)], produce)];
    for (let n = 1; n <= 1500; n++) acks.push(table.write(0, [entry(n)], produce));
    acks.push(table.write(0, [entry(1501), entry(1502), entry(1503)], produce));
    for (let round = 0; round < 3; round++) {
      release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    release();
    await Promise.all(acks);
    expect(produced.map((p) => p.length)).toEqual([1, 1000, 503]);
    expect(produced.flat()).toEqual(Array.from({ length: 1504 }, (_, n) => n));
  });
});
