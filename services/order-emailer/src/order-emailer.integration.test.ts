/**
 * order-emailer on the real Kafka and Redis (`pnpm stack up`), with the email API played by a local HTTP
 * server: 2,000 orders, a restart of the service mid-stream and transient API failures, and every order
 * confirmed exactly once; then 10,000 orders end to end with the API answering every POST in 20 ms, each
 * order exactly one successful POST, and the measured throughput printed. Topics, groups and Redis keys are
 * unique to each test.
 */
import { Order } from '@stream/contracts';
import { createApp, deadLetterTopicName, defineTopic, silentLogger, type App } from '@stream/core';
import { deleteTopics, EmailSink, localServers, requireServers, testKafka, uniqueName, waitUntil, withAdmin } from '@stream/local-stack';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { emailerAgent, OrderConfirmer } from './agent.js';
import { DedupeStore } from './dedupe.js';
import { EmailClient } from './emailer.js';

const N = 2000;
const TOKEN = 'tok-integration-5d1e';
/** The throughput test: orders, the email API's answer time, and orders in flight (EMAILER_CONCURRENCY). */
const THROUGHPUT_N = 10_000;
const API_DELAY_MS = 20;
const THROUGHPUT_CONCURRENCY = 64;

function orderValue(i: number): Order {
  return {
    id: `o-${i}`,
    userId: `u-${i % 97}`,
    symbol: 'AAPL',
    side: i % 2 ? 'sell' : 'buy',
    quantity: 1 + (i % 50),
    price: 150 + i / 100,
    executedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)),
  };
}

/** Sends orders o-0 … o-(n-1) in batches of 500, keyed by order id. */
async function sendOrders(topic: ReturnType<typeof ordersTopic>, n: number): Promise<void> {
  const producer = testKafka().producer();
  await producer.connect();
  try {
    for (let start = 0; start < n; start += 500) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(500, n - start) }, (_, j) => {
          const value = orderValue(start + j);
          return topic.encode({ key: value.id, value });
        }),
      );
      await producer.send({
        topic: topic.name,
        messages: batch.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } as Record<string, Buffer> })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

function ordersTopic(name: string) {
  return defineTopic({ name: uniqueName(name), key: z.string().min(1), value: Order, partitions: 6 });
}

/** True once the group's committed offsets reach the end of every partition of `topic`. */
async function committedEverything(topic: string, groupId: string): Promise<boolean> {
  return withAdmin(async (admin) => {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    return ends.every((e) => (at.get(e.partition) ?? -1) >= Number(e.high));
  });
}

describe('order-emailer on Kafka and Redis', () => {
  const topic = ordersTopic('orders');
  const groupId = uniqueName('order-emailer');
  const prefix = `${uniqueName('emailer-it')}:`;
  let redis: Redis;
  let sink: EmailSink;
  const apps: App[] = [];

  beforeAll(async () => {
    await requireServers('kafka', 'redis');
    redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
    // About one order in 20 gets a 503 on its first POST; the rest are answered within a few ms.
    sink = await EmailSink.start({
      script: (request, nth) => (nth === 1 && Number(request.key?.slice(2)) % 20 === 0 ? { status: 503 } : { delayMs: 1 + (nth % 3) }),
    });
  });

  afterAll(async () => {
    for (const app of apps) await app.stop();
    await sink?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
    await deleteTopics([topic.name, deadLetterTopicName(topic.name)]);
  });

  async function startApp(): Promise<App> {
    const app = createApp({
      id: groupId,
      brokers: localServers().kafkaBrokers,
      createTopics: true,
      logger: silentLogger(),
      commitIntervalMs: 200,
      shutdownTimeoutMs: 10_000,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 500,
    });
    const dedupe = new DedupeStore(redis, { leaseMs: 5000, ttlSeconds: 3600, keyPrefix: prefix });
    const emailer = new EmailClient({ url: sink.url, token: TOKEN, timeoutMs: 2000, maxRetryAfterMs: 1000 });
    emailerAgent(app, topic, new OrderConfirmer(emailer, dedupe), { concurrency: 16, retry: { attempts: Infinity, backoff: { initialMs: 20, maxMs: 500 } } });
    apps.push(app);
    await app.start();
    return app;
  }

  it(`confirms ${N} orders exactly once each, across a restart mid-stream`, async () => {
    const first = await startApp();

    await sendOrders(topic, N);

    // Stop the first instance mid-stream, requests in flight; a new one takes over the group.
    await waitUntil(() => sink.delivered().size >= 500 && sink.requests.some((r) => r.outcome === 'pending'), '500 emails and requests in flight', 30_000);
    const stopped = await first.stop();
    expect(stopped.timedOut).toBe(false);
    expect(sink.delivered().size).toBeLessThan(N);

    await startApp();
    await waitUntil(() => sink.delivered().size === N, `${N} distinct emails`, 60_000);
    await waitUntil(() => committedEverything(topic.name, groupId), 'the group to commit every offset', 30_000);

    const delivered = sink.delivered();
    expect(delivered.size).toBe(N);
    for (let i = 0; i < N; i += 1) expect(delivered.get(`o-${i}`), `o-${i}`).toBe(1);
    // Every POST was either the one success of its order or a 503 before it: nothing was POSTed after a success.
    const failedFirst = sink.requests.filter((r) => r.status === 503).length;
    expect(failedFirst).toBe(N / 20);
    expect(sink.requests).toHaveLength(N + failedFirst);
    expect(sink.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    const dlqEnds = await withAdmin((admin) => admin.fetchTopicOffsets(deadLetterTopicName(topic.name)));
    expect(dlqEnds.every((p) => p.high === '0')).toBe(true);
  });
});

describe(`order-emailer throughput: ${THROUGHPUT_N.toLocaleString('en-US')} orders, email API answering in ${API_DELAY_MS} ms`, () => {
  const topic = ordersTopic('orders-throughput');
  const groupId = uniqueName('order-emailer-throughput');
  const prefix = `${uniqueName('emailer-tp')}:`;
  let redis: Redis;
  let sink: EmailSink;
  let app: App | undefined;

  beforeAll(async () => {
    await requireServers('kafka', 'redis');
    redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
    sink = await EmailSink.start({ latencyMs: API_DELAY_MS });
  });

  afterAll(async () => {
    if (app?.state === 'running') await app.stop();
    await sink?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
      await redis.quit();
    }
    await deleteTopics([topic.name, deadLetterTopicName(topic.name)]);
  });

  it(`sends exactly one successful POST per order and reports orders/s end to end`, async () => {
    app = createApp({ id: groupId, brokers: localServers().kafkaBrokers, createTopics: true, logger: silentLogger(), commitIntervalMs: 200 });
    const dedupe = new DedupeStore(redis, { leaseMs: 15_000, ttlSeconds: 3600, keyPrefix: prefix });
    const emailer = new EmailClient({ url: sink.url, token: TOKEN, timeoutMs: 5000, maxRetryAfterMs: 1000 });
    emailerAgent(app, topic, new OrderConfirmer(emailer, dedupe), { concurrency: THROUGHPUT_CONCURRENCY });
    await app.start();

    // End to end: from the first order sent to Kafka to the last confirmation answered by the API.
    const started = performance.now();
    await sendOrders(topic, THROUGHPUT_N);
    // Cheap check first: delivered() walks every request, and this process also runs the app being measured.
    await waitUntil(() => sink.requests.length >= THROUGHPUT_N && sink.delivered().size === THROUGHPUT_N, `${THROUGHPUT_N} distinct emails`, 240_000);
    const seconds = (performance.now() - started) / 1000;
    await waitUntil(() => committedEverything(topic.name, groupId), 'the group to commit every offset', 30_000);
    const stopped = await app.stop();
    expect(stopped.timedOut).toBe(false);

    // Measured, never asserted: the machine is shared and timing varies.
    console.log(
      `order-emailer: ${THROUGHPUT_N} orders end to end in ${seconds.toFixed(2)} s = ${Math.round(THROUGHPUT_N / seconds)} orders/s ` +
        `(email API answering in ${API_DELAY_MS} ms, concurrency ${THROUGHPUT_CONCURRENCY}, 6 partitions)`,
    );

    const delivered = sink.delivered();
    expect(delivered.size).toBe(THROUGHPUT_N);
    const notOnce = Array.from({ length: THROUGHPUT_N }, (_, i) => `o-${i}`).filter((id) => delivered.get(id) !== 1);
    expect(notOnce).toEqual([]);
    // No failures scripted: one POST per order, every one answered 200.
    expect(sink.requests).toHaveLength(THROUGHPUT_N);
    expect(sink.requests.every((r) => r.status === 200 && r.outcome === 'answered')).toBe(true);
    const dlqEnds = await withAdmin((admin) => admin.fetchTopicOffsets(deadLetterTopicName(topic.name)));
    expect(dlqEnds.every((p) => p.high === '0')).toBe(true);
  }, 300_000);
});
