import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { defineTopic } from './topic.js';
import { changelogTopicName } from './table.js';
import { MemoryBroker, MemoryTransport } from './testing/index.js';
import type { Transport } from './transport/transport.js';
import { StreamError } from './errors.js';
import { noInstrumentation, type Instrumentation } from './runtime/instrumentation.js';
import { STREAM_TIME_HEADER, WindowedTable } from './windowed-table.js';
import { answerTableQuery } from './ops/tables.js';
import { eventually, settled, silent, unique } from './table-test-support.js';

const MINUTE = 60_000;
/** A fixed base for event times (2026-01-01T00:00:00Z): far from the clock's "now", well within maxFutureMs. */
const T0 = Date.UTC(2026, 0, 1);

const Click = z.object({ page: z.string(), at: z.number().int() });
const Summary = z.object({ page: z.string(), start: z.number().int(), end: z.number().int(), count: z.number().int() });

interface WindowApp {
  readonly app: App;
  readonly source: string;
  readonly summaries: string;
  readonly changelog: string;
}

/** Counts clicks per page and window of `size` ms (hopping by `step`), emitting closed windows to `summaries`. */
function windowApp(
  broker: MemoryBroker,
  id: string,
  source: string,
  summaries: string,
  window: { size: number; step?: number; grace?: number; maxFutureMs?: number },
  options: { exactlyOnce?: boolean; stateDir?: string; instrumentation?: Instrumentation } = {},
): WindowApp {
  const clicks = defineTopic({ name: source, key: z.string(), value: Click });
  const out = defineTopic({ name: summaries, key: z.string(), value: Summary });
  if (!broker.topics().includes(summaries)) broker.createTopic(summaries, 1);
  const app = createApp({
    id,
    transport: new MemoryTransport(broker, { maxBatchSize: 50 }),
    commitIntervalMs: 20,
    logger: silent(),
    ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
    ...(options.instrumentation === undefined ? {} : { instrumentation: options.instrumentation }),
  });
  const perWindow = app.windowedTable('clicks', {
    key: z.string(),
    value: z.number().int(),
    default: 0,
    window,
    onClose: {
      topic: out,
      record: ({ key, window: w, value }) => ({ key, value: { page: key, start: w.start, end: w.end, count: value } }),
    },
  });
  app.agent(clicks, { tables: [perWindow], exactlyOnce: options.exactlyOnce ?? false, retry: { attempts: 1 } }, async (click, ctx) => {
    ctx.table(perWindow, { time: click.at }).update(click.page, (n = 0) => n + 1);
  });
  return { app, source, summaries, changelog: changelogTopicName(id, 'clicks') };
}

/** A new broker and a started window app on a topic of one partition. */
async function startedWindowApp(window: Parameters<typeof windowApp>[4]): Promise<{ broker: MemoryBroker; id: string; w: WindowApp }> {
  const broker = new MemoryBroker();
  const id = unique('win');
  const w = windowApp(broker, id, unique('clicks'), unique('summaries'), window);
  broker.createTopic(w.source, 1);
  await w.app.start();
  return { broker, id, w };
}

async function produce(broker: MemoryBroker, topic: string, clicks: readonly { page: string; at: number }[]): Promise<void> {
  const producer = new MemoryTransport(broker).producer();
  await producer.connect();
  await producer.send(clicks.map((c) => ({ topic, key: Buffer.from(c.page), value: Buffer.from(JSON.stringify(c)), headers: {} })));
}

/** What a window app emitted (the memory broker appends a transaction's messages only when it commits). */
function emitted(broker: MemoryBroker, topic: string): z.infer<typeof Summary>[] {
  return broker.messages(topic).map((m) => Summary.parse(JSON.parse(m.value!.toString())));
}

function deadLetters(broker: MemoryBroker, topic: string): { at: number; reason: string; errorClass: string }[] {
  return broker.messages(`${topic}.dlq`).map((m) => ({
    at: (JSON.parse(m.value!.toString()) as { at: number }).at,
    reason: m.headers['dlq.error.message']!.toString(),
    errorClass: m.headers['dlq.error.class']!.toString(),
  }));
}

const w0changelog = (id: string) => changelogTopicName(id, 'clicks');

describe('windowed tables on the memory transport', () => {
  it('counts per tumbling window, emits each window once when stream time passes its end plus grace, and tombstones it', async () => {
    const { broker, id, w } = await startedWindowApp({ size: MINUTE, grace: 10_000 });
    await produce(broker, w.source, [
      { page: 'a', at: T0 + 1_000 },
      { page: 'a', at: T0 + 59_999 },
      { page: 'b', at: T0 + 30_000 },
      { page: 'a', at: T0 + MINUTE + 5_000 }, // next window: stream time T0+65s, the first still in grace
      { page: 'b', at: T0 + 20_000 }, // late but within grace: counts in the first window
      { page: 'a', at: T0 + MINUTE + 10_000 }, // stream time T0+70s = end + grace: the first window closes
    ]);
    await settled(broker, id, w.source);
    expect(emitted(broker, w.summaries).sort((x, y) => x.page.localeCompare(y.page))).toEqual([
      { page: 'a', start: T0, end: T0 + MINUTE, count: 2 },
      { page: 'b', start: T0, end: T0 + MINUTE, count: 2 },
    ]);
    // The closed windows are removed from the changelog (tombstones), the open one stays.
    const live = new Map<string, Buffer | null>();
    for (const m of broker.messages(w.changelog)) live.set(m.key!.toString('hex'), m.value);
    const values = [...live.values()].filter((v) => v !== null).map((v) => v.toString());
    expect(values).toEqual(['2']);
    expect(broker.messages(w.changelog).at(-1)!.headers[STREAM_TIME_HEADER]!.toString()).toBe(String(T0 + MINUTE + 10_000));
    await w.app.stop();
  });

  it('dead-letters a record whose every window closed (LateRecordError) and one stamped beyond maxFutureMs, moving stream time for neither', async () => {
    const { broker, id, w } = await startedWindowApp({ size: MINUTE, grace: 0 });
    const farFuture = Date.now() + 2 * 3_600_000;
    await produce(broker, w.source, [
      { page: 'a', at: T0 + 1_000 },
      { page: 'a', at: T0 + MINUTE }, // closes [T0, T0+60s)
      { page: 'a', at: T0 + 59_000 }, // late
      { page: 'a', at: farFuture }, // refused: would close everything
      { page: 'a', at: T0 + MINUTE + 1 }, // still on time: the far-future record did not move stream time
    ]);
    await settled(broker, id, w.source);
    const letters = deadLetters(broker, w.source);
    expect(letters.map((l) => [l.at, l.errorClass])).toEqual([
      [T0 + 59_000, 'LateRecordError'],
      [farFuture, 'EventTimeError'],
    ]);
    expect(letters[0]!.reason).toMatch(/is late: its window \[2026-01-01T00:00:00.000Z, 2026-01-01T00:01:00.000Z\) closed/);
    expect(letters[1]!.reason).toMatch(/ahead of this clock/);
    expect(emitted(broker, w.summaries)).toEqual([{ page: 'a', start: T0, end: T0 + MINUTE, count: 1 }]);
    await w.app.stop();
  });

  it('counts a record in every hopping window that holds it, and reads current(), delta() and windows()', async () => {
    const broker = new MemoryBroker();
    const id = unique('win');
    const source = unique('clicks');
    const summaries = unique('summaries');
    broker.createTopic(source, 1);
    broker.createTopic(summaries, 1);
    const clicks = defineTopic({ name: source, key: z.string(), value: Click });
    const out = defineTopic({ name: summaries, key: z.string(), value: Summary });
    const app = createApp({ id, transport: new MemoryTransport(broker), commitIntervalMs: 20, logger: silent() });
    const hopping = app.windowedTable('hop', {
      key: z.string(),
      value: z.number().int(),
      window: { size: 30_000, step: 10_000 },
      onClose: { topic: out, record: ({ key, window, value }) => ({ key, value: { page: key, start: window.start, end: window.end, count: value } }) },
    });
    const reads: { current: number | undefined; delta: number | undefined; windows: number }[] = [];
    app.agent(clicks, { tables: [hopping] }, async (click, ctx) => {
      const view = ctx.table(hopping, { time: click.at });
      view.update(click.page, (n = 0) => n + 1);
      reads.push({ current: view.current(click.page), delta: view.delta(click.page, 10_000), windows: view.windows(click.page).length });
    });
    await app.start();
    await produce(broker, source, [
      { page: 'a', at: T0 + 25_000 }, // windows starting T0, T0+10s, T0+20s
      { page: 'a', at: T0 + 35_000 }, // T0+10s, T0+20s, T0+30s; stream time 35s closes [T0, T0+30s)
      { page: 'a', at: T0 + 100_000 }, // closes everything before
    ]);
    await settled(broker, id, source);
    expect(reads).toEqual([
      { current: 1, delta: 1, windows: 3 },
      { current: 1, delta: 2, windows: 4 },
      // At 100 s: windows from 80 s, 90 s and 100 s (one from 70 s ends at 100 s, exclusive); 10 s to 30 s still held.
      { current: 1, delta: 1, windows: 6 },
    ]);
    expect(emitted(broker, summaries).map((s) => [s.start - T0, s.end - s.start, s.count])).toEqual([
      [0, 30_000, 1],
      [10_000, 30_000, 2],
      [20_000, 30_000, 2],
      [30_000, 30_000, 1],
    ]);
    await app.stop();
  });

  for (const store of ['memory', 'stateDir'] as const) {
    it(`restores open windows and stream time (${store === 'memory' ? 'from the changelog' : 'from the local store, reading no changelog entry'}): a restarted instance closes and refuses exactly as the first would`, async () => {
      const broker = new MemoryBroker();
      const id = unique('win');
      const source = unique('clicks');
      const summaries = unique('summaries');
      broker.createTopic(source, 2);
      const stateDir = store === 'stateDir' ? mkdtempSync(join(tmpdir(), 'stream-window-store-')) : undefined;
      const local = stateDir === undefined ? {} : { stateDir };
      let read = 0;
      const instrumentation: Instrumentation = {
        ...noInstrumentation,
        restoring: (_table, _partition, lag, restored) => void (lag === 0 && (read += restored)),
      };
      const first = windowApp(broker, id, source, summaries, { size: MINUTE, grace: 5_000 }, local);
      await first.app.start();
      await produce(broker, source, [
        { page: 'a', at: T0 + 1_000 },
        { page: 'b', at: T0 + 2_000 },
        { page: 'a', at: T0 + MINUTE + 6_000 }, // closes the first minute (grace 5 s) wherever a and b are
        { page: 'b', at: T0 + MINUTE + 7_000 },
      ]);
      await settled(broker, id, source);
      await first.app.stop();
      expect(
        emitted(broker, summaries)
          .map((s) => [s.page, s.start - T0, s.count])
          .sort(),
      ).toEqual([
        ['a', 0, 1],
        ['b', 0, 1],
      ]);
      const second = windowApp(broker, id, source, summaries, { size: MINUTE, grace: 5_000 }, { ...local, instrumentation });
      await second.app.start();
      await produce(broker, source, [
        { page: 'a', at: T0 + 3_000 }, // late: the restored stream time is past its window's end plus grace
        { page: 'b', at: T0 + 2 * MINUTE + 10_000 },
        { page: 'a', at: T0 + 2 * MINUTE + 10_000 },
      ]);
      await settled(broker, id, source);
      await second.app.stop();
      // The second minute's counts were restored (1 each) and emitted by the second instance, once.
      expect(
        emitted(broker, summaries)
          .map((s) => [s.page, s.start - T0, s.count])
          .sort(),
      ).toEqual([
        ['a', 0, 1],
        ['a', MINUTE, 1],
        ['b', 0, 1],
        ['b', MINUTE, 1],
      ]);
      expect(deadLetters(broker, source).map((l) => l.errorClass)).toEqual(['LateRecordError']);
      // From the local store, stream time and the window index came from the loaded entries alone.
      if (stateDir !== undefined) {
        expect(read).toBe(0);
        rmSync(stateDir, { recursive: true, force: true });
      } else expect(read).toBeGreaterThan(0);
    });
  }

  it('does not dead-letter as late a record redelivered after a crash whose update the restored state already holds', async () => {
    const broker = new MemoryBroker();
    const id = unique('win');
    const source = unique('clicks');
    const summaries = unique('summaries');
    broker.createTopic(source, 1);
    const first = windowApp(broker, id, source, summaries, { size: MINUTE });
    await first.app.start();
    const removeCommit = broker.failNext('commit', 1_000_000);
    await produce(broker, source, [
      { page: 'a', at: T0 + 1_000 },
      { page: 'a', at: T0 + MINUTE }, // closes the first window
    ]);
    await eventually(() => expect(broker.messages(w0changelog(id))).toHaveLength(3));
    await first.app.stop(); // nothing committed: both records are delivered again
    removeCommit();
    const second = windowApp(broker, id, source, summaries, { size: MINUTE });
    await second.app.start();
    await settled(broker, id, source);
    await second.app.stop();
    expect(deadLetters(broker, source)).toEqual([]);
    expect(emitted(broker, summaries)).toEqual([{ page: 'a', start: T0, end: T0 + MINUTE, count: 1 }]);
  });

  it("answers a query (GET /tables/<table>/<key>) with the key's open windows and the partition's stream time", async () => {
    const { broker, id, w } = await startedWindowApp({ size: MINUTE, grace: 30_000 });
    await produce(broker, w.source, [
      { page: 'a b', at: T0 + 1_000 },
      { page: 'a b', at: T0 + MINUTE + 1_000 },
      { page: 'a b', at: T0 + MINUTE + 2_000 },
    ]);
    await settled(broker, id, w.source);
    const answer = await answerTableQuery(w.app, '/tables/clicks/a%20b');
    expect(answer).toEqual({
      status: 200,
      body: {
        table: 'clicks',
        key: 'a b',
        partition: 0,
        value: {
          streamTime: new Date(T0 + MINUTE + 2_000).toISOString(),
          windows: [
            { start: new Date(T0).toISOString(), end: new Date(T0 + MINUTE).toISOString(), value: 1 },
            { start: new Date(T0 + MINUTE).toISOString(), end: new Date(T0 + 2 * MINUTE).toISOString(), value: 2 },
          ],
        },
      },
    });
    expect((await answerTableQuery(w.app, '/tables/clicks/nobody')).status).toBe(404);
    await w.app.stop();
  });

  it('refuses bad window options', () => {
    const app = createApp({ id: unique('cfg'), transport: new MemoryTransport(new MemoryBroker()), logger: silent() });
    const make = (window: { size: number; step?: number; grace?: number }) => () =>
      app.windowedTable(unique('t'), { key: z.string(), value: z.number(), window });
    expect(make({ size: 0 })).toThrow(/window.size/);
    expect(make({ size: 1000, step: 2000 })).toThrow(/window.step/);
    expect(make({ size: 1000, grace: -1 })).toThrow(/window.grace/);
    expect(make({ size: 1000.5 })).toThrow(/window.size/);
    expect(app.windowedTable(unique('ok'), { key: z.string(), value: z.number(), window: { size: 1000 } })).toBeInstanceOf(WindowedTable);
  });

  it('a property: emitted and open windows equal a reference fold of the on-time records, across crashes, under both delivery modes', async () => {
    const size = 10_000;
    const grace = 3_000;
    /** Per partition, in offset order: each record counts in its window unless the window has closed. */
    const reference = (clicks: readonly { page: string; at: number }[]) => {
      let streamTime = Number.NEGATIVE_INFINITY;
      const counts = new Map<string, number>();
      let late = 0;
      for (const c of clicks) {
        const start = Math.floor(c.at / size) * size;
        if (start + size + grace <= streamTime) {
          late += 1;
          continue;
        }
        streamTime = Math.max(streamTime, c.at);
        const k = `${c.page}@${start}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      return { counts, late };
    };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ page: fc.constantFrom('a', 'b', 'c'), dt: fc.integer({ min: -8_000, max: 6_000 }) }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 59 }), { maxLength: 2 }),
        fc.boolean(),
        async (steps, crashes, exactlyOnce) => {
          // Event times wander forward with some going back: on time, within grace, and late.
          let t = T0 + 50_000;
          const clicks = steps.map((s) => ({ page: s.page, at: (t = Math.max(T0, t + s.dt)) }));
          const broker = new MemoryBroker();
          const id = unique('prop');
          const source = unique('clicks');
          const summaries = unique('summaries');
          broker.createTopic(source, 1);
          const cuts = [...new Set(crashes.filter((c) => c < clicks.length))].sort((a, b) => a - b);
          let from = 0;
          for (const cut of [...cuts, clicks.length]) {
            const w = windowApp(broker, id, source, summaries, { size, grace }, { exactlyOnce });
            await w.app.start();
            await produce(broker, source, clicks.slice(from, cut));
            from = cut;
            if (cut === clicks.length) {
              await settled(broker, id, source);
              await w.app.stop();
            } else {
              // A crash: whatever was processed since the last commit is processed again by the next instance.
              const removeCommit = broker.failNext('commit', 1_000_000);
              const removeTx = broker.failNext('transaction', 1_000_000);
              await w.app.stop();
              removeCommit();
              removeTx();
            }
          }
          const { counts, late } = reference(clicks);
          // What the windows hold: emitted (read committed) plus still open in the changelog.
          const got = new Map<string, number>();
          const out = emitted(broker, summaries);
          for (const s of out) got.set(`${s.page}@${s.start}`, s.count);
          if (exactlyOnce) expect(out).toHaveLength(got.size); // each closed window once
          const live = new Map<string, number>();
          for (const m of broker.messages(changelogTopicName(id, 'clicks'))) {
            if (m.key![0] !== 1) continue;
            const k = `${m.key!.subarray(9).toString()}@${Number(m.key!.readBigInt64BE(1))}`;
            if (m.value === null) live.delete(k);
            else live.set(k, Number(m.value.toString()));
          }
          for (const [k, v] of live) {
            expect(got.has(k)).toBe(false);
            got.set(k, v);
          }
          expect(Object.fromEntries(got)).toEqual(Object.fromEntries(counts));
          // Each late record dead-lettered: once under exactly-once; at least once otherwise (a dead letter sent
          // before a crash that kept its offset from committing is sent again).
          const letters = broker.messages(`${source}.dlq`).map((m) => m.headers['dlq.source.offset']!.toString());
          expect(new Set(letters).size).toBe(late);
          if (exactlyOnce) expect(letters).toHaveLength(late);
        },
      ),
      { numRuns: 100 },
    );
  }, 120_000);
});

describe('table state per consumer group', () => {
  it("two groups of one app id keep separate changelogs: neither restores nor writes the other's state", async () => {
    const broker = new MemoryBroker();
    const id = unique('app');
    const source = unique('clicks');
    broker.createTopic(source, 1);
    const clicks = defineTopic({ name: source, key: z.string(), value: Click });
    const counted = new Map<string, number[]>();
    const start = async (groupId: string) => {
      const app = createApp({ id, groupId, transport: new MemoryTransport(broker), commitIntervalMs: 20, logger: silent() });
      const counts = app.table('counts', { key: z.string(), value: z.number().int(), default: 0 });
      app.agent(clicks, { tables: [counts] }, async (_click, ctx) => {
        const table = ctx.table(counts);
        const next = (table.get(ctx.key) ?? 0) + 1;
        table.set(ctx.key, next);
        counted.set(groupId, [...(counted.get(groupId) ?? []), next]);
      });
      await app.start();
      return app;
    };
    const blue = await start(`${id}-blue`);
    await produce(broker, source, [{ page: 'p', at: T0 }]);
    await settled(broker, `${id}-blue`, source);
    await blue.stop();
    const green = await start(`${id}-green`);
    await settled(broker, `${id}-green`, source);
    await green.stop();
    // The green group counts the record from zero: the blue group's changelog is not its own.
    expect(counted.get(`${id}-green`)).toEqual([1]);
    expect(broker.messages(changelogTopicName(`${id}-blue`, 'counts'))).toHaveLength(1);
    expect(broker.messages(changelogTopicName(`${id}-green`, 'counts'))).toHaveLength(1);
  });
});

describe('tables on a transport that cannot read a partition', () => {
  it('fail the start at once with CONFIG_INVALID, creating nothing, instead of retrying a restore that can never run', async () => {
    const broker = new MemoryBroker();
    const memory = new MemoryTransport(broker);
    const source = unique('clicks');
    broker.createTopic(source, 1);
    // A transport without readPartition (the seam's method is optional: a custom transport may lack it).
    const unreadable: Transport = { name: 'unreadable', consumer: (o) => memory.consumer(o), producer: (o) => memory.producer(o), admin: () => memory.admin() };
    const id = unique('app');
    const app = createApp({ id, transport: unreadable, logger: silent() });
    const counts = app.table('counts', { key: z.string(), value: z.number() });
    app.agent(defineTopic({ name: source, key: z.string(), value: Click }), { tables: [counts] }, async () => undefined);
    const failure = await app.start().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StreamError);
    expect((failure as StreamError).code).toBe('CONFIG_INVALID');
    expect((failure as StreamError).message).toMatch(/cannot read a partition, so its tables cannot be restored/);
    expect(broker.topics()).not.toContain(changelogTopicName(id, 'counts'));
  });
});
