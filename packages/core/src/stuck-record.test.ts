import { describe, expect, it } from 'vitest';
import { RuntimeMetrics } from './ops/metrics.js';
import { startOpsServer } from './ops/server.js';
import { createTestApp, MemoryBroker, type TestHarness } from './testing/index.js';
import { delay, eventually, payment, payments, receipts } from '../test/fixtures.js';

/** Resolves once `read()` has not changed for `quietMs` (the runtime has nothing left to do but wait). */
async function quiescent(read: () => number, quietMs = 100, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = read();
  let since = Date.now();
  for (;;) {
    await delay(10);
    const now = read();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= quietMs) return now;
    if (Date.now() > deadline) throw new Error(`still changing after ${timeoutMs} ms: ${now}`);
  }
}

/** A gate a handler waits on, opened once by the test. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** `count` records on partition 0, the first keyed `stuck`, the others each with a key of their own. */
async function fill(h: TestHarness, topic: ReturnType<typeof payments>, count: number, headers?: Record<string, string>): Promise<void> {
  const records = Array.from({ length: count }, (_, i) => ({
    key: i === 0 ? 'stuck' : `k${i}`,
    value: payment(i),
    partition: 0,
    ...(headers ? { headers } : {}),
  }));
  // Concurrent sends share produce requests: 20,000 of them take a fraction of a second.
  await Promise.all(records.map((r) => h.app.send(topic, r)));
}

const BATCH = 500; // the memory transport's largest fetch

describe('a record that never finishes', () => {
  it('pauses its partition after buffer.maxRecords records, whatever ran or finished behind it; all of it commits once it finishes', async () => {
    const topic = payments('stuck-records', 1);
    const stuck = gate();
    let started = 0;
    const h = await createTestApp({ buffer: { maxRecords: 100 } }, (app) =>
      app.agent(topic, { concurrency: 8 }, async (_p, ctx) => {
        started += 1;
        if (ctx.key === 'stuck') await stuck.wait;
      }),
    );
    await fill(h, topic, 20_000);
    const startedWhileStuck = await quiescent(() => started);
    // The limit plus at most one fetched batch: queued, running and finished-but-uncommitted all count.
    expect(startedWhileStuck).toBeLessThanOrEqual(100 + BATCH);
    const [p0] = h.app.health().partitions;
    expect(p0).toMatchObject({ topic: topic.name, partition: 0, paused: true });
    expect(p0!.heldRecords).toBeLessThanOrEqual(100 + BATCH);
    expect(p0!.heldRecords).toBeGreaterThanOrEqual(100);
    expect(h.committed(topic).get(0) ?? 0).toBe(0);
    stuck.open();
    await h.settle(20_000);
    expect(started).toBe(20_000);
    expect(h.committed(topic).get(0)).toBe(20_000);
    expect(h.app.health().partitions[0]).toMatchObject({ heldRecords: 0, heldBytes: 0, paused: false, lag: 0, commitAgeMs: 0 });
    await h.stop();
  });

  it('under exactly-once bounds the outputs held for the transaction too', async () => {
    const topic = payments('stuck-eos', 1);
    const output = receipts('stuck-eos-out', 1);
    const stuck = gate();
    let started = 0;
    const h = await createTestApp({ buffer: { maxRecords: 100 }, outputs: [output] }, (app) =>
      app.agent(topic, { concurrency: 8, exactlyOnce: true }, async (p, ctx) => {
        started += 1;
        if (ctx.key === 'stuck') await stuck.wait;
        await ctx.send(output, { key: p.id, value: { paymentId: p.id, amount: p.amount } });
      }),
    );
    await fill(h, topic, 20_000);
    const startedWhileStuck = await quiescent(() => started);
    expect(startedWhileStuck).toBeLessThanOrEqual(100 + BATCH);
    const [p0] = h.app.health().partitions;
    // Records and the outputs they sent, waiting for a transaction that cannot commit past the stuck record.
    expect(p0!.heldRecords).toBeLessThanOrEqual(2 * (100 + BATCH));
    expect(p0!.paused).toBe(true);
    expect(h.broker.messages(output.name)).toHaveLength(0);
    stuck.open();
    await h.settle(30_000);
    expect(started).toBe(20_000);
    expect(h.committed(topic).get(0)).toBe(20_000);
    expect(new Set(h.broker.messages(output.name).map((m) => m.key?.toString())).size).toBe(20_000);
    expect(h.app.health().partitions[0]).toMatchObject({ heldRecords: 0, heldBytes: 0 });
    await h.stop();
  });

  it('counts header bytes against buffer.maxBytes', async () => {
    const topic = payments('stuck-headers', 1);
    const stuck = gate();
    let started = 0;
    const big = { blob: 'x'.repeat(4096) };
    const h = await createTestApp({ buffer: { maxRecords: 100_000, maxBytes: 64 * 1024 }, maxBytesPerPartition: 64 * 1024 }, (app) =>
      app.agent(topic, { concurrency: 8 }, async (_p, ctx) => {
        started += 1;
        if (ctx.key === 'stuck') await stuck.wait;
      }),
    );
    await fill(h, topic, 2000, big);
    const startedWhileStuck = await quiescent(() => started);
    // 64 KiB of 4 KiB header blocks is 16 records; one 64 KiB fetch adds about as many.
    expect(startedWhileStuck).toBeLessThanOrEqual(2 * 16 + 2);
    expect(h.app.health().partitions[0]!.heldBytes).toBeGreaterThanOrEqual(64 * 1024);
    stuck.open();
    await h.settle(20_000);
    expect(h.committed(topic).get(0)).toBe(2000);
    await h.stop();
  });
});

describe('a pinned partition is visible', () => {
  it('in lag, commit age, per-partition health and /healthz, while another partition flows', async () => {
    const topic = payments('pinned', 2);
    const stuck = gate();
    const metrics = new RuntimeMetrics({ defaultMetrics: false });
    const broker = new MemoryBroker();
    const h = await createTestApp({ broker, instrumentation: metrics, stuckAfterMs: 200 }, (app) =>
      app.agent(topic, { name: 'pinner', concurrency: 4 }, async (_p, ctx) => {
        if (ctx.key === 'stuck') await stuck.wait;
      }),
    );
    metrics.attach(h.app);
    const ops = await startOpsServer({ app: h.app, metrics, port: 0, host: '127.0.0.1' });
    const healthz = async () => {
      const res = await fetch(`http://127.0.0.1:${ops.port}/healthz`);
      return { status: res.status, body: (await res.json()) as { problems: string[] } };
    };
    const gauge = async (name: string, partition?: number) => {
      const text = await metrics.registry.metrics();
      const labels = partition === undefined ? '' : `\\{topic="${topic.name}",partition="${partition}"\\}`;
      const match = new RegExp(`^${name}${labels} (\\S+)$`, 'm').exec(text);
      if (!match) throw new Error(`no ${name}${partition === undefined ? '' : ` for partition ${partition}`} in /metrics`);
      return Number(match[1]);
    };

    await h.send(topic, { key: 'stuck', value: payment(0), partition: 0 }, ...[1, 2, 3, 4, 5].map((i) => ({ key: `k${i}`, value: payment(i), partition: 0 })));
    let sent1 = 0;
    const flow = setInterval(() => void h.send(topic, { key: `f${sent1}`, value: payment(sent1++), partition: 1 }), 5);
    try {
      await eventually(() => h.app.health().agents[0]!.oldestInFlightMs > 250, 5000, 'the record to be in flight past the bound');
      await eventually(() => (h.committed(topic).get(1) ?? 0) > 0, 5000, 'partition 1 to commit');
      const health = h.app.health();
      // The five records behind it finished, but nothing of partition 0 is committed: all six are lag.
      expect(health.lag.find((l) => l.partition === 0)?.lag).toBe(6);
      expect(await gauge('stream_consumer_lag', 0)).toBe(6);
      // Partition 1 keeps committing, and does not refresh the app's commit age.
      expect(await gauge('stream_last_commit_age_seconds')).toBeGreaterThan(0.2);
      expect(health.stuck).toHaveLength(1);
      expect(health.stuck[0]).toMatchObject({ topic: topic.name, partition: 0, agent: 'pinner', offset: 0 });
      expect(health.stuck[0]!.ageMs).toBeGreaterThan(250);
      const p0 = health.partitions.find((p) => p.partition === 0)!;
      const p1 = health.partitions.find((p) => p.partition === 1)!;
      expect(p0).toMatchObject({ lag: 6, committedOffset: 0, oldestUnfinished: { agent: 'pinner', offset: 0 } });
      expect(p0.commitAgeMs).toBeGreaterThan(250);
      expect(p1.oldestUnfinished).toBeUndefined();
      expect(health.commitAgeMs).toBeGreaterThanOrEqual(p0.commitAgeMs);
      expect(await gauge('stream_partition_commit_age_seconds', 0)).toBeGreaterThan(0.2);
      expect(await gauge('stream_partition_commit_age_seconds', 1)).toBeLessThan(await gauge('stream_partition_commit_age_seconds', 0));
      expect(await gauge('stream_partition_oldest_unfinished_seconds', 0)).toBeGreaterThan(0.2);
      expect(await gauge('stream_partition_oldest_unfinished_seconds', 1)).toBe(0);
      const unhealthy = await healthz();
      expect(unhealthy.status).toBe(503);
      expect(unhealthy.body.problems).toEqual([expect.stringMatching(new RegExp(`^agent pinner: record ${topic.name}/0 offset 0 unfinished for \\d+ s$`))]);
    } finally {
      clearInterval(flow);
    }
    stuck.open();
    await h.settle();
    const after = h.app.health();
    expect(after.stuck).toEqual([]);
    expect(after.commitAgeMs).toBe(0);
    expect(after.partitions.every((p) => p.lag === 0 && p.commitAgeMs === 0 && p.oldestUnfinished === undefined)).toBe(true);
    expect(await healthz()).toEqual({ status: 200, body: { status: 'ok', problems: [] } });
    await ops.close();
    await h.stop();
  });

  it('keeps the lag of a paused partition growing while producers write on', async () => {
    const topic = payments('paused-lag', 1);
    const stuck = gate();
    const h = await createTestApp({ buffer: { maxRecords: 10 } }, (app) =>
      app.agent(topic, { concurrency: 4 }, async (_p, ctx) => {
        if (ctx.key === 'stuck') await stuck.wait;
      }),
    );
    await fill(h, topic, 20);
    await eventually(() => h.app.health().partitions[0]?.paused === true, 5000, 'the partition to be paused');
    await h.send(topic, ...Array.from({ length: 30 }, (_, i) => ({ key: `late${i}`, value: payment(i), partition: 0 })));
    // Not fetched while paused: the log end is read for it.
    await eventually(() => h.app.health().lag[0]?.lag === 50, 5000, 'the lag to count the records written after the pause');
    stuck.open();
    await h.settle();
    expect(h.committed(topic).get(0)).toBe(50);
    expect(h.app.health().lag[0]?.lag).toBe(0);
    await h.stop();
  });

  it('refuses a stuckAfterMs that is not a positive number', async () => {
    await expect(createTestApp({ stuckAfterMs: 0 }, () => undefined)).rejects.toThrow(/stuckAfterMs must be a positive number/);
  });
});
