import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import type { GlobalTable } from './global-table.js';
import { changelogTopicName } from './table.js';
import { defineTopic } from './topic.js';
import { emptyRawHeaders, type ReadPartitionOptions, type Transport } from './transport/transport.js';
import { MemoryBroker, MemoryTransport } from './testing/index.js';
import { RuntimeMetrics } from './ops/metrics.js';
import { eventually, unique } from './table-test-support.js';

interface Logged {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A logger that keeps what is logged, for assertions. */
function recordingLogger(lines: Logged[] = []) {
  const at =
    (level: string) =>
    (fields: unknown, msg?: string): void => {
      lines.push({ level, fields: typeof fields === 'object' && fields !== null ? (fields as Record<string, unknown>) : {}, msg: msg ?? String(fields) });
    };
  const logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: () => logger,
    level: 'trace',
  };
  return { lines, logger: logger as unknown as NonNullable<Parameters<typeof createApp>[0]['logger']> };
}

const Instrument = z.object({ symbol: z.string(), tick: z.number().positive() });

function instrumentTopic(name: string) {
  return defineTopic({ name, key: z.string(), value: Instrument, partitions: 3 });
}

/** Writes raw records (bad ones too) straight to the broker. */
async function produceRaw(broker: MemoryBroker, topic: string, records: { key: string; value: string | null; partition?: number }[]): Promise<void> {
  const producer = new MemoryTransport(broker).producer();
  await producer.connect();
  await producer.send(
    records.map((r) => ({
      topic,
      key: Buffer.from(r.key),
      value: r.value === null ? null : Buffer.from(r.value),
      headers: emptyRawHeaders(),
      ...(r.partition === undefined ? {} : { partition: r.partition }),
    })),
  );
  await producer.disconnect();
}

const json = (symbol: string, tick: number) => JSON.stringify({ symbol, tick });

/** An app holding one global table over `topic`, with no agents. */
function readerApp(transport: Transport, topic: ReturnType<typeof instrumentTopic>, intervalMs = 50, logger = recordingLogger().logger) {
  const app = createApp({ id: unique('reader'), transport, logger });
  const instruments = app.globalTable('instruments', { topic, intervalMs });
  return { app, instruments };
}

describe('global tables', () => {
  it('gives every instance every key of every partition, then follows the topic within the interval', async () => {
    const broker = new MemoryBroker();
    const topic = instrumentTopic(unique('instruments'));
    broker.createTopic(topic.name, 3);
    const symbols = Array.from({ length: 30 }, (_, i) => `SYM${i}`);
    await produceRaw(
      broker,
      topic.name,
      symbols.map((s, i) => ({ key: s, value: json(s, i + 1) })),
    );
    expect(new Set(broker.messages(topic.name).map((m) => m.partition)).size).toBe(3);

    const apps: App[] = [];
    try {
      const instances = [readerApp(new MemoryTransport(broker), topic), readerApp(new MemoryTransport(broker), topic)];
      apps.push(...instances.map((i) => i.app));
      await Promise.all(apps.map((a) => a.start()));
      for (const { app, instruments } of instances) {
        expect(app.ready).toBe(true);
        expect(instruments.size).toBe(30);
        for (const [i, s] of symbols.entries()) expect(instruments.get(s)).toEqual({ symbol: s, tick: i + 1 });
        expect(app.health().globalTables[0]).toMatchObject({ name: 'instruments', topic: topic.name, loaded: true, lag: 0, skipped: 0 });
      }

      // After start: an update, a new key and a tombstone arrive within the interval (50 ms here).
      const sent = Date.now();
      await produceRaw(broker, topic.name, [
        { key: 'SYM0', value: json('SYM0', 99) },
        { key: 'NEW', value: json('NEW', 7) },
        { key: 'SYM1', value: null },
      ]);
      for (const { instruments } of instances) {
        await eventually(() => {
          expect(instruments.get('SYM0')).toEqual({ symbol: 'SYM0', tick: 99 });
          expect(instruments.get('NEW')).toEqual({ symbol: 'NEW', tick: 7 });
          expect(instruments.has('SYM1')).toBe(false);
          expect(instruments.get('SYM1')).toBeUndefined();
        }, 2000);
      }
      expect(Date.now() - sent).toBeLessThan(1000);
      expect(instances[0]!.instruments.size).toBe(30);
    } finally {
      await Promise.all(apps.map((a) => a.stop()));
    }
  });

  it('is not ready until the initial load finished', async () => {
    const broker = new MemoryBroker();
    const topic = instrumentTopic(unique('instruments'));
    broker.createTopic(topic.name, 3);
    await produceRaw(broker, topic.name, [{ key: 'A', value: json('A', 1) }]);
    const memory = new MemoryTransport(broker);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The first read is held back: start() must not finish and the app must not be ready meanwhile.
    const gated: Transport = {
      name: 'gated',
      readPartition: async (options: ReadPartitionOptions) => {
        await gate;
        return memory.readPartition(options);
      },
      consumer: (o) => memory.consumer(o),
      producer: (o) => memory.producer(o),
      admin: () => memory.admin(),
    };
    const { app, instruments } = readerApp(gated, topic);
    let started = false;
    const start = app.start().then(() => (started = true));
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(started).toBe(false);
      expect(app.ready).toBe(false);
      expect(app.health().ready).toBe(false);
      expect(app.health().globalTables[0]!.loaded).toBe(false);
      expect(instruments.has('A')).toBe(false);
      release();
      await start;
      expect(app.ready).toBe(true);
      expect(instruments.get('A')).toEqual({ symbol: 'A', tick: 1 });
    } finally {
      release();
      await start.catch(() => undefined);
      await app.stop();
    }
  });

  it('skips a value that fails the schema, logs and counts it with its offset, and goes on', async () => {
    const broker = new MemoryBroker();
    const topic = instrumentTopic(unique('instruments'));
    broker.createTopic(topic.name, 3);
    await produceRaw(broker, topic.name, [
      { key: 'A', value: json('A', 1), partition: 0 },
      { key: 'B', value: json('B', -5), partition: 0 }, // tick must be positive
      { key: 'C', value: '{not json', partition: 0 },
      { key: 'D', value: json('D', 4), partition: 0 },
    ]);
    const { lines, logger } = recordingLogger();
    const { app, instruments } = readerApp(new MemoryTransport(broker), topic, 50, logger);
    try {
      await app.start();
      expect(instruments.get('A')).toEqual({ symbol: 'A', tick: 1 });
      expect(instruments.get('D')).toEqual({ symbol: 'D', tick: 4 });
      expect(instruments.has('B')).toBe(false);
      expect(instruments.has('C')).toBe(false);
      const health = app.health().globalTables[0]!;
      expect(health.skipped).toBe(2);
      expect(health.lastSkipped).toMatchObject({ partition: 0, offset: 2 });
      const errors = lines.filter((l) => l.level === 'error' && /skipped/.test(l.msg));
      expect(errors.map((e) => e.fields['offset'])).toEqual([1, 2]);

      // A bad record after start is skipped too; the table keeps following.
      await produceRaw(broker, topic.name, [
        { key: 'E', value: json('E', 0), partition: 0 },
        { key: 'F', value: json('F', 6), partition: 0 },
      ]);
      await eventually(() => expect(instruments.get('F')).toEqual({ symbol: 'F', tick: 6 }));
      expect(app.health().globalTables[0]).toMatchObject({ skipped: 3, lastSkipped: { partition: 0, offset: 4 } });
      expect(app.state).toBe('running');
      const metrics = new RuntimeMetrics({ defaultMetrics: false });
      metrics.attach(app);
      const text = await metrics.registry.metrics();
      expect(text).toContain('stream_global_table_skipped_total{table="instruments"} 3');
      expect(text).toContain('stream_global_table_lag{table="instruments"} 0');
      expect(text).toContain('stream_global_table_loaded{table="instruments"} 1');
    } finally {
      await app.stop();
    }
  });

  it('stop() during the initial load ends it: start() rejects, nothing keeps polling', async () => {
    const broker = new MemoryBroker();
    const topic = instrumentTopic(unique('instruments'));
    broker.createTopic(topic.name, 3);
    await produceRaw(broker, topic.name, [{ key: 'A', value: json('A', 1) }]);
    const memory = new MemoryTransport(broker);
    let reads = 0;
    // Every read fails: the load retries with backoff until stop() aborts it.
    const failing: Transport = {
      name: 'failing',
      readPartition: async () => {
        reads += 1;
        throw new Error('broker down');
      },
      consumer: (o) => memory.consumer(o),
      producer: (o) => memory.producer(o),
      admin: () => memory.admin(),
    };
    const { app } = readerApp(failing, topic);
    const start = app.start();
    await eventually(() => expect(reads).toBeGreaterThan(0));
    expect(app.ready).toBe(false);
    await app.stop();
    await expect(start).rejects.toThrow();
    const after = reads;
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(reads).toBe(after);
  });

  it('retries a failing read with backoff without failing the app, and stop() ends the loop', async () => {
    const broker = new MemoryBroker();
    const topic = instrumentTopic(unique('instruments'));
    broker.createTopic(topic.name, 3);
    const memory = new MemoryTransport(broker);
    let down = false;
    let reads = 0;
    let endOffsetCalls = 0;
    const flaky: Transport = {
      name: 'flaky',
      readPartition: async (options: ReadPartitionOptions) => {
        reads += 1;
        if (down) throw new Error('broker down');
        return memory.readPartition(options);
      },
      consumer: (o) => memory.consumer(o),
      producer: (o) => memory.producer(o),
      admin: () => {
        const admin = memory.admin();
        // Counts the polls; everything else goes to the memory admin (bound: it has private fields).
        return new Proxy(admin, {
          get(target, prop) {
            if (prop === 'endOffsets') {
              return (t: string) => {
                endOffsetCalls += 1;
                return target.endOffsets(t);
              };
            }
            const value: unknown = Reflect.get(target, prop, target);
            return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
          },
        });
      },
    };
    const { app, instruments } = readerApp(flaky, topic, 20);
    await app.start();
    try {
      down = true;
      await produceRaw(broker, topic.name, [{ key: 'A', value: json('A', 1) }]);
      await eventually(() => expect(app.health().globalTables[0]!.lastError).toBe('broker down'));
      expect(app.health().globalTables[0]!.lag).toBe(1);
      // Backoff (500 ms, then 1 s…): a 20 ms interval would have read about 25 times in 500 ms.
      const before = reads;
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(reads - before).toBeLessThanOrEqual(2);
      expect(app.state).toBe('running');
      down = false;
      await eventually(() => expect(instruments.get('A')).toEqual({ symbol: 'A', tick: 1 }), 5000);
      expect(app.health().globalTables[0]).toMatchObject({ lag: 0, lastError: undefined });
    } finally {
      await app.stop();
    }
    // Stopped: no more polls.
    const calls = endOffsetCalls;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(endOffsetCalls).toBe(calls);
  });

  it('follows a table’s changelog ({ of: table }): state written on one partition is read on every instance', async () => {
    const broker = new MemoryBroker();
    const clicks = defineTopic({ name: unique('clicks'), key: z.string(), value: z.object({ n: z.number() }), partitions: 3 });
    broker.createTopic(clicks.name, 3);
    const id = unique('counter');
    const app = createApp({ id, transport: new MemoryTransport(broker), commitIntervalMs: 20, logger: recordingLogger().logger });
    const counts = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
    const everywhere = app.globalTable('all-counts', { of: counts, intervalMs: 20 });
    const seen: (number | undefined)[] = [];
    app.agent(clicks, { tables: [counts] }, async (_click, ctx) => {
      const table = ctx.table(counts);
      table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
      // Any key, whatever this record's partition.
      seen.push(everywhere.get('user-0'));
    });
    try {
      await app.start();
      for (let i = 0; i < 12; i++) await app.send(clicks, { key: `user-${i % 4}`, value: { n: i } });
      await eventually(() => {
        for (let u = 0; u < 4; u++) expect(everywhere.get(`user-${u}`)).toBe(3);
      });
      expect(app.health().globalTables[0]!.topic).toBe(changelogTopicName(id, 'counts'));
      expect(seen.length).toBe(12);
    } finally {
      await app.stop();
    }
  });

  it('is read-only and typed by its source', () => {
    const app = createApp({ id: unique('types'), transport: new MemoryTransport(new MemoryBroker()) });
    const instruments = app.globalTable('instruments', { topic: instrumentTopic('instruments') });
    expectTypeOf(instruments).toEqualTypeOf<GlobalTable<string, string, { symbol: string; tick: number }>>();
    expectTypeOf<ReturnType<typeof instruments.get>>().toEqualTypeOf<{ symbol: string; tick: number } | undefined>();
    // A write is a compile error: the type has no set or delete (and the object none at run time either).
    expectTypeOf(instruments).not.toHaveProperty('set');
    expectTypeOf(instruments).not.toHaveProperty('delete');
    expect('set' in instruments || 'delete' in instruments).toBe(false);
    expect(() =>
      // @ts-expect-error keys are typed by the topic's key schema (and checked by it at run time)
      instruments.has(42),
    ).toThrow(/key/);
  });

  it('fails the start when its topic does not exist, and refuses bad options', async () => {
    const broker = new MemoryBroker();
    const { app } = readerApp(new MemoryTransport(broker), instrumentTopic(unique('missing')));
    await expect(app.start()).rejects.toMatchObject({ code: 'TOPIC_MISSING' });
    const other = createApp({ id: unique('opts'), transport: new MemoryTransport(broker) });
    expect(() => other.globalTable('x', { topic: instrumentTopic('t'), intervalMs: 0 })).toThrow(/intervalMs/);
    const windows = other.windowedTable('w', { key: z.string(), value: z.number(), window: { size: 1000 } });
    expect(() => other.globalTable('z', { of: windows })).toThrow(/windowed/);
    other.globalTable('y', { topic: instrumentTopic('t') });
    expect(() => other.globalTable('y', { topic: instrumentTopic('t') })).toThrow(/defined twice/);
  });
});
