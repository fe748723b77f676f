import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from '../app.js';
import { StreamError } from '../errors.js';
import { createLogger } from '../logger.js';
import { defineTopic } from '../topic.js';
import { MemoryBroker, MemoryTransport } from '../transport/memory/index.js';
import { murmur2 } from '../transport/memory/partitioner.js';
import type { ConsumerListener, ReadPartitionOptions } from '../transport/transport.js';
import { advertisedUrlOf, defaultAdvertisedUrl, memberInfoOf } from './advertise.js';
import { RuntimeMetrics } from './metrics.js';
import { startOpsServer, type OpsServer } from './server.js';
import { MAX_TABLE_KEY_BYTES, TABLE_OWNER_HEADER } from './tables.js';

const silent = () => createLogger({ name: 'tables-query-test', level: 'silent' });

let seq = 0;
const unique = (name: string) => `${name}-${process.pid}-${++seq}`;

/** Retries an async assertion until it passes or `timeoutMs` passes. */
async function eventually(assertion: () => Promise<void> | void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

// Not a power of two: `murmur2 >>> 0` (platformatic's default) and `& 0x7fffffff` (Java's) differ modulo 6.
const PARTITIONS = 6;
/** The key's partition as the Java client computes it: what the query must find. */
const partitionOf = (key: string) => (murmur2(Buffer.from(key)) & 0x7fffffff) % PARTITIONS;

interface Instance {
  readonly app: App;
  readonly ops: OpsServer;
  readonly base: string;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/**
 * One instance of a click counter in group `id`: its ops server on a free port, started before the app
 * (so the app advertises it), then the app.
 */
async function instance(broker: MemoryBroker, id: string, topicName: string, transport = new MemoryTransport(broker)): Promise<Instance> {
  const topic = defineTopic({ name: topicName, key: z.string(), value: z.object({ n: z.number() }) });
  const app = createApp({ id, transport, commitIntervalMs: 20, logger: silent() });
  const counts = app.table('counts', { key: z.string().regex(/^user-\d+$/, 'expected user-<number>'), value: z.number().int(), default: 0 });
  app.agent(topic, { tables: [counts] }, async (_value, ctx) => {
    const table = ctx.table(counts);
    table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
  });
  const ops = await startOpsServer({ app, metrics: new RuntimeMetrics({ defaultMetrics: false }), port: 0 });
  cleanups.push(() => ops.close());
  cleanups.push(() => app.stop());
  await app.start();
  return { app, ops, base: `http://127.0.0.1:${ops.port}` };
}

async function produce(broker: MemoryBroker, topic: string, keys: readonly string[]): Promise<void> {
  const producer = new MemoryTransport(broker).producer();
  await producer.connect();
  await producer.send(keys.map((key) => ({ topic, key: Buffer.from(key), value: Buffer.from('{"n":1}'), headers: {} })));
}

const holds = (app: App, topic: string, partition: number) => app.health().assignment.some((tp) => tp.topic === topic && tp.partition === partition);

/** Two instances of one group, every record counted, the group settled with both owning partitions. */
async function twoInstances() {
  const broker = new MemoryBroker();
  const topic = unique('clicks');
  const id = unique('counter');
  broker.createTopic(topic, PARTITIONS);
  const a = await instance(broker, id, topic);
  const b = await instance(broker, id, topic);
  await eventually(() => {
    expect(a.app.ready && b.app.ready).toBe(true);
    expect(a.app.health().assignment).toHaveLength(PARTITIONS / 2);
    expect(b.app.health().assignment).toHaveLength(PARTITIONS / 2);
  });
  const keys = Array.from({ length: 40 }, (_, i) => `user-${i % 10}`);
  await produce(broker, topic, keys);
  await eventually(() => {
    const committed = broker.committed(id).filter((c) => c.topic === topic);
    expect(committed.reduce((sum, c) => sum + Number(c.offset), 0)).toBe(keys.length);
  });
  const ownerOf = (key: string) => (holds(a.app, topic, partitionOf(key)) ? a : b);
  const otherOf = (key: string) => (ownerOf(key) === a ? b : a);
  return { broker, topic, id, a, b, ownerOf, otherOf };
}

async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe('GET /tables/<table>/<key> (#18)', () => {
  it('is answered by the instance holding the key’s partition and redirected there by the other one', async () => {
    const { a, b, ownerOf, otherOf } = await twoInstances();
    expect(a.app.advertisedUrl).toBe(a.base);
    expect(b.app.advertisedUrl).toBe(b.base);
    // Keys landing on partitions of both instances, so each answers some and redirects others.
    const keys = Array.from({ length: 10 }, (_, i) => `user-${i}`);
    expect(new Set(keys.map((k) => ownerOf(k)))).toEqual(new Set([a, b]));
    for (const key of keys) {
      const owner = ownerOf(key);
      const other = otherOf(key);
      const direct = await getJson(`${owner.base}/tables/counts/${key}`);
      expect(direct.status, key).toBe(200);
      expect(direct.body).toEqual({ table: 'counts', key, partition: partitionOf(key), value: 4 });

      const redirect = await fetch(`${other.base}/tables/counts/${key}`, { redirect: 'manual' });
      expect(redirect.status, key).toBe(307);
      expect(redirect.headers.get('location')).toBe(`${owner.base}/tables/counts/${key}`);
      expect(redirect.headers.get(TABLE_OWNER_HEADER)).toMatch(/member/);
      expect(redirect.headers.get('cache-control')).toBe('no-store');
      await redirect.body?.cancel();

      // fetch follows the redirect to the owner's answer.
      const followed = await getJson(`${other.base}/tables/counts/${key}`);
      expect(followed.status).toBe(200);
      expect(followed.body.value).toBe(4);
    }
  });

  it('answers 404 for a key without a value or an unknown table, 400 for a key the schema refuses, 414 for a long one', async () => {
    const { a, ownerOf } = await twoInstances();
    const missing = await getJson(`${ownerOf('user-77').base}/tables/counts/user-77`);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: 'the key has no value', table: 'counts', partition: partitionOf('user-77') });
    // Through the redirect too.
    expect((await getJson(`${a.base}/tables/counts/user-77`)).status).toBe(404);

    const unknown = await getJson(`${a.base}/tables/secret-table-name/user-1`);
    expect(unknown.status).toBe(404);
    expect(JSON.stringify(unknown.body)).not.toContain('secret-table-name');

    const invalid = await getJson(`${a.base}/tables/counts/${encodeURIComponent('password=hunter2')}`);
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toBe('invalid key for table counts');
    expect(JSON.stringify(invalid.body)).toContain('expected user-<number>');
    expect(JSON.stringify(invalid.body)).not.toContain('hunter2');

    expect((await getJson(`${a.base}/tables/counts/%`)).status).toBe(400);
    expect((await getJson(`${a.base}/tables/counts/%E0%A4%A`)).status).toBe(400);
    expect((await getJson(`${a.base}/tables/counts/%00`)).status).toBe(400);
    expect((await getJson(`${a.base}/tables/counts/user-${'1'.repeat(MAX_TABLE_KEY_BYTES)}`)).status).toBe(414);
    expect((await getJson(`${a.base}/tables/counts/${'%41'.repeat(2000)}`)).status).toBe(414);
    expect((await getJson(`${a.base}/tables/counts`)).status).toBe(404);
  });

  it('never fails on a hostile path: every answer is one of the documented statuses', async () => {
    const { a } = await twoInstances();
    const segment = fc.oneof(
      fc.constantFrom('counts', '%', '%00', '%2F', '..', '%ZZ', '%C0%AF', '%ED%A0%80', '', 'user-1', 'user-1%2F..', '__proto__', 'constructor'),
      fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
      fc.string({ maxLength: 20 }),
    );
    await fc.assert(
      fc.asyncProperty(segment, segment, async (name, key) => {
        let status: number;
        try {
          const response = await fetch(`${a.base}/tables/${name}/${key}`, { redirect: 'manual' });
          status = response.status;
          await response.body?.cancel();
        } catch (error) {
          // fetch itself refuses some URLs (a bare `%` in a host-relative path is fine, control characters are not).
          if (error instanceof TypeError) return;
          throw error;
        }
        expect([200, 307, 400, 404, 414], `${name}/${key}`).toContain(status);
      }),
      { numRuns: 200 },
    );
    expect((await fetch(`${a.base}/healthz`)).status).toBe(200);
  });

  it('answers 503 with Retry-After while the key’s partition is restoring here', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, PARTITIONS);
    const first = await instance(broker, id, topic);
    await produce(broker, topic, ['user-1', 'user-1']);
    await eventually(async () => expect((await getJson(`${first.base}/tables/counts/user-1`)).body.value).toBe(2));
    await first.app.stop();
    await first.ops.close();

    // The next instance's restore waits for the gate.
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    class GatedTransport extends MemoryTransport {
      override async readPartition(options: ReadPartitionOptions): Promise<void> {
        await gate;
        return super.readPartition(options);
      }
    }
    const second = await instance(broker, id, topic, new GatedTransport(broker));
    const restoring = await getJson(`${second.base}/tables/counts/user-1`);
    expect(restoring.status).toBe(503);
    expect(restoring.headers.get('retry-after')).toBe('1');
    expect(restoring.body.error).toMatch(/being restored/);
    open();
    await eventually(async () => expect(await getJson(`${second.base}/tables/counts/user-1`)).toMatchObject({ status: 200, body: { value: 2 } }));
  });

  it('answers 503 with Retry-After when the owner advertises no address, or while the group rebalances', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, PARTITIONS);
    const a = await instance(broker, id, topic);
    // A bare member of the group that publishes nothing, and holds its rejoin when told to.
    let hold: Promise<void> | undefined = undefined;
    const listener: ConsumerListener = { onAssignment: () => undefined, onBatch: () => 0, onRevoking: () => hold, onCrash: () => undefined };
    const bare = new MemoryTransport(broker).consumer({
      groupId: id,
      topics: [topic],
      fromBeginning: true,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
      rebalanceTimeoutMs: 10_000,
      readCommitted: true,
      maxBytesPerPartition: 1 << 20,
    });
    cleanups.push(() => bare.stop());
    await bare.start(listener);
    await eventually(() => expect(a.app.health().assignment).toHaveLength(PARTITIONS / 2));
    const key = Array.from({ length: 20 }, (_, i) => `user-${i}`).find((k) => !holds(a.app, topic, partitionOf(k)))!;
    const noAddress = await getJson(`${a.base}/tables/counts/${key}`);
    expect(noAddress.status).toBe(503);
    expect(noAddress.headers.get('retry-after')).toBe('5');
    expect(noAddress.body.error).toMatch(/advertises no address/);

    // A third member joins; the bare one does not let the rebalance complete.
    hold = new Promise(() => undefined);
    const late = new MemoryTransport(broker).consumer({
      groupId: id,
      topics: [topic],
      fromBeginning: true,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
      rebalanceTimeoutMs: 10_000,
      readCommitted: true,
      maxBytesPerPartition: 1 << 20,
    });
    cleanups.push(() => late.stop());
    void late.start({ ...listener, onRevoking: () => undefined });
    await eventually(async () => {
      const rebalancing = await getJson(`${a.base}/tables/counts/${key}`);
      expect(rebalancing.status).toBe(503);
      expect(rebalancing.headers.get('retry-after')).toBe('1');
      expect(rebalancing.body.error).toMatch(/no owner .* is known now \(group .* is rebalancing\)/);
    });
  });
});

describe('the advertised address (#18)', () => {
  it('is refused with credentials, a query or another scheme, without echoing it', () => {
    for (const url of ['http://user:s3cret@host:9464', 'ftp://host', 'http://host/?token=s3cret', 'not a url', `http://h/${'x'.repeat(600)}`]) {
      let error: unknown;
      try {
        createApp({ id: 'adv', transport: new MemoryTransport(), logger: silent(), advertisedUrl: url });
      } catch (e) {
        error = e;
      }
      expect(error, url).toBeInstanceOf(StreamError);
      expect((error as StreamError).code).toBe('CONFIG_INVALID');
      expect((error as Error).message).not.toContain('s3cret');
    }
  });

  it('defaults to the ops server’s address, keeps a given one, and travels as JSON that a hostile member cannot abuse', async () => {
    expect(defaultAdvertisedUrl('127.0.0.1', 9464)).toBe('http://127.0.0.1:9464');
    expect(defaultAdvertisedUrl('::1', 9464)).toBe('http://[::1]:9464');
    expect(defaultAdvertisedUrl('0.0.0.0', 9464)).not.toContain('0.0.0.0');
    const given = createApp({ id: 'adv', transport: new MemoryTransport(), logger: silent(), advertisedUrl: 'https://orders-2.orders:9464/ops/' });
    const ops = await startOpsServer({ app: given, metrics: new RuntimeMetrics({ defaultMetrics: false }), port: 0 });
    await ops.close();
    expect(given.advertisedUrl).toBe('https://orders-2.orders:9464/ops');
    expect(advertisedUrlOf(memberInfoOf('http://a:1'))).toBe('http://a:1');
    for (const info of ['{"url":"javascript:alert(1)"}', '{"url":"http://u:p@a"}', 'http://a:1', '{"url":42}', 'null', undefined])
      expect(advertisedUrlOf(info)).toBeUndefined();
  });
});
