/**
 * order-emailer on the real Kafka and Redis (`pnpm stack up`), with the email API played by a local HTTP
 * server: 2,000 orders, a restart of the service mid-stream and transient API failures, and every order
 * confirmed exactly once. The topic, group and Redis keys are unique to the run.
 */
import { Order } from '@stream/contracts';
import { createApp, defineTopic, silentLogger, type App } from '@stream/core';
import { deleteTopics, localServers, requireServers, testKafka, uniqueName, withAdmin } from '@stream/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EmailSink, waitUntil } from '../test/email-sink.js';
import { emailerAgent, OrderConfirmer } from './agent.js';
import { DedupeStore } from './dedupe.js';
import { EmailClient } from './emailer.js';

const N = 2000;
const TOKEN = 'tok-integration-5d1e';

describe('order-emailer on Kafka and Redis', () => {
  const topic = defineTopic({ name: uniqueName('orders'), key: z.string().min(1), value: Order, partitions: 6 });
  const groupId = uniqueName('order-emailer');
  const prefix = `${uniqueName('emailer-it')}:`;
  let redis: Redis;
  let sink: EmailSink;
  const apps: App[] = [];

  beforeAll(async () => {
    await requireServers('kafka', 'redis');
    redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
    // About one order in 20 gets a 503 on its first POST; the rest are answered within a few ms.
    sink = await EmailSink.start((request, nth) => (nth === 1 && Number(request.key?.slice(2)) % 20 === 0 ? { status: 503 } : { delayMs: 1 + (nth % 3) }));
  });

  afterAll(async () => {
    for (const app of apps) await app.stop();
    await sink?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
    await deleteTopics([topic.name, `${topic.name}.dlq`]);
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

  async function committedEverything(): Promise<boolean> {
    return withAdmin(async (admin) => {
      const ends = await admin.fetchTopicOffsets(topic.name);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic.name] });
      const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      return ends.every((e) => (at.get(e.partition) ?? -1) >= Number(e.high));
    });
  }

  it(`confirms ${N} orders exactly once each, across a restart mid-stream`, async () => {
    const first = await startApp();

    const producer = testKafka().producer();
    await producer.connect();
    try {
      for (let start = 0; start < N; start += 500) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(500, N - start) }, (_, j) => {
            const i = start + j;
            const value = { id: `o-${i}`, userId: `u-${i % 97}`, symbol: 'AAPL', side: i % 2 ? ('sell' as const) : ('buy' as const), quantity: 1 + (i % 50), price: 150 + i / 100, executedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)) };
            return topic.encode({ key: value.id, value });
          }),
        );
        await producer.send({ topic: topic.name, messages: batch.map((m) => ({ key: m.key, value: m.value, headers: m.headers })) });
      }
    } finally {
      await producer.disconnect();
    }

    // Stop the first instance mid-stream, requests in flight; a new one takes over the group.
    await waitUntil(() => sink.delivered().size >= 500 && sink.requests.some((r) => r.outcome === 'pending'), '500 emails and requests in flight', 30_000);
    const stopped = await first.stop();
    expect(stopped.timedOut).toBe(false);
    expect(sink.delivered().size).toBeLessThan(N);

    await startApp();
    await waitUntil(() => sink.delivered().size === N, `${N} distinct emails`, 60_000);
    await waitUntil(committedEverything, 'the group to commit every offset', 30_000);

    const delivered = sink.delivered();
    expect(delivered.size).toBe(N);
    for (let i = 0; i < N; i += 1) expect(delivered.get(`o-${i}`), `o-${i}`).toBe(1);
    // Every POST was either the one success of its order or a 503 before it: nothing was POSTed after a success.
    const failedFirst = sink.requests.filter((r) => r.status === 503).length;
    expect(failedFirst).toBe(N / 20);
    expect(sink.requests).toHaveLength(N + failedFirst);
    expect(sink.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    const dlqEnds = await withAdmin((admin) => admin.fetchTopicOffsets(`${topic.name}.dlq`));
    expect(dlqEnds.every((p) => p.high === '0')).toBe(true);
  });
});
