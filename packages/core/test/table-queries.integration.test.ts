/**
 * Table queries over HTTP on the local broker: two instances of one group, each with its ops server on a
 * free port; each advertises it in the group (userData) and finds the other's with DescribeGroups.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, localServers, requireServers, uniqueName, waitUntil } from '@stream/local-stack';
import {
  changelogTopicName,
  createApp,
  defineTopic,
  KAFKA_CLIENTS,
  RuntimeMetrics,
  silentLogger,
  startOpsServer,
  type App,
  type KafkaClient,
  type OpsServer,
} from '../src/index.js';
import { murmur2 } from '../src/transport/memory/partitioner.js';

const brokers = [...localServers().kafkaBrokers];
const topics: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
// Not a power of two, so a partitioner hashing as `murmur2 >>> 0` would pick other partitions.
const PARTITIONS = 6;
const partitionOf = (key: string) => (murmur2(Buffer.from(key)) & 0x7fffffff) % PARTITIONS;

interface Instance {
  readonly app: App;
  readonly ops: OpsServer;
  readonly base: string;
}

async function instance(client: KafkaClient, id: string, input: string): Promise<Instance> {
  const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number() }) });
  const app = createApp({ id, brokers, transport: client, logger: silentLogger(), commitIntervalMs: 200, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 500 });
  const counts = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
  app.agent(topic, { tables: [counts] }, async (_value, ctx) => {
    const table = ctx.table(counts);
    table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
  });
  // Started before the app: the app advertises this server's address when it joins the group.
  const ops = await startOpsServer({ app, metrics: new RuntimeMetrics({ defaultMetrics: false }), port: 0 });
  cleanups.push(() => ops.close());
  cleanups.push(() => app.stop());
  await app.start();
  return { app, ops, base: `http://127.0.0.1:${ops.port}` };
}

const holds = (app: App, topic: string, partition: number) => app.health().assignment.some((tp) => tp.topic === topic && tp.partition === partition);

async function query(url: string, redirect: 'follow' | 'manual' = 'follow'): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(url, { redirect });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe('table queries on Kafka (#18)', () => {
  beforeAll(() => requireServers('kafka'));
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });
  afterAll(() => deleteTopics(topics));

  for (const client of KAFKA_CLIENTS) {
    it(`the owner of a key's partition answers, the other instance redirects to it, and after a leave the survivor answers (${client})`, async () => {
      const input = uniqueName('table-queries-in');
      const id = uniqueName('table-queries-app');
      topics.push(...(await createTopics([{ name: input, partitions: PARTITIONS }])), changelogTopicName(id, 'counts'));
      const a = await instance(client, id, input);
      const b = await instance(client, id, input);
      await waitUntil(
        () => a.app.ready && b.app.ready && a.app.health().assignment.length === PARTITIONS / 2 && b.app.health().assignment.length === PARTITIONS / 2,
        'both instances to hold half of the partitions, restored',
        30_000,
      );

      const producer = createApp({ id: uniqueName('table-queries-producer'), brokers, logger: silentLogger() });
      cleanups.push(() => producer.stop());
      const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number() }) });
      const keys = Array.from({ length: 12 }, (_, i) => `user-${i}`);
      await Promise.all(keys.flatMap((key) => [1, 2, 3].map(() => producer.send(topic, { key, value: { n: 1 } }))));

      const ownerOf = (key: string) => (holds(a.app, input, partitionOf(key)) ? a : b);
      expect(new Set(keys.map(ownerOf))).toEqual(new Set([a, b]));
      // Every key counted, asked through either instance (fetch follows the redirect).
      for (const key of keys) {
        await waitUntil(async () => (await query(`${a.base}/tables/counts/${key}`)).body.value === 3, `${key} to count 3 through A`, 30_000);
      }
      for (const key of keys) {
        const owner = ownerOf(key);
        const other = owner === a ? b : a;
        expect(await query(`${owner.base}/tables/counts/${key}`)).toMatchObject({
          status: 200,
          body: { table: 'counts', key, partition: partitionOf(key), value: 3 },
        });
        const redirect = await query(`${other.base}/tables/counts/${key}`, 'manual');
        expect(redirect.status, key).toBe(307);
        expect(redirect.headers.get('location')).toBe(`${owner.base}/tables/counts/${key}`);
        expect(redirect.headers.get('stream-table-owner')).toBeTruthy();
        expect((await query(`${other.base}/tables/counts/${key}`)).body.value).toBe(3);
      }
      expect((await query(`${a.base}/tables/counts/user-999`)).status).toBe(404);

      // B leaves: A restores B's partitions from the changelog and answers every key itself.
      await b.app.stop();
      await b.ops.close();
      await waitUntil(() => a.app.ready && a.app.health().assignment.length === PARTITIONS, 'A to hold every partition, restored', 30_000);
      for (const key of keys) {
        const answer = await query(`${a.base}/tables/counts/${key}`, 'manual');
        expect(answer.status, key).toBe(200);
        expect(answer.body.value).toBe(3);
      }
    });
  }
});
