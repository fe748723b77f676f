import { FeedActivity } from '@stream/contracts';
import { createApp, defineTopic, silentLogger } from '@stream/core';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName } from '@stream/local-stack';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedAgent } from './agent.js';
import { FeedStore, memberOf } from './feed-store.js';

/**
 * A Redis of this test's own, with an append-only file fsynced on every write, so it can be stopped and
 * started mid-stream like a real outage without losing what was acknowledged.
 */
class OwnRedis {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'feed-redis-'));
  process: ChildProcess | undefined;
  constructor(readonly port: number) {}

  async start(): Promise<void> {
    this.process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
      { stdio: 'ignore' },
    );
    const client = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    for (let i = 0; i < 100; i += 1) {
      try {
        await client.connect();
        await client.ping();
        client.disconnect();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error('own redis-server did not start');
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

describe('feed-cache on the real Kafka and Redis', () => {
  const topics: string[] = [];
  let redisServer: OwnRedis;

  beforeAll(async () => {
    await requireServers('kafka', 'redis');
    redisServer = new OwnRedis(await freePort());
    await redisServer.start();
  });
  afterAll(async () => {
    await redisServer.stop();
    redisServer.remove();
    await deleteTopics(topics);
  });

  it('20,000 activities for 500 users match a simple model, with Redis stopped for a few seconds mid-stream', async () => {
    const topic = defineTopic({ name: uniqueName('feed-activities'), key: z.string().min(1), value: FeedActivity, partitions: 6 });
    topics.push(...(await createTopics([{ name: topic.name, partitions: 6 }])));
    const maxItems = 20;
    const total = 20_000;
    const users = 500;
    const activities: FeedActivity[] = Array.from({ length: total }, (_, i) => ({
      id: `act-${i}`,
      user: `user-${i % users}`,
      message: `activity ${i}`,
      // Timestamps deliberately out of order within each user.
      timestamp: new Date(Date.UTC(2026, 0, 1) + ((i * 7919) % 1_000_003) * 1000),
    }));

    const producer = testKafka().producer();
    await producer.connect();
    for (let i = 0; i < total; i += 2000) {
      await producer.send({
        topic: topic.name,
        messages: activities.slice(i, i + 2000).map((a) => ({ key: a.user, value: JSON.stringify(a) })),
      });
    }
    await producer.disconnect();

    const redis = new Redis(redisServer.port, '127.0.0.1', { maxRetriesPerRequest: 1, connectTimeout: 1000, retryStrategy: (n) => Math.min(n * 100, 1000) });
    redis.on('error', () => undefined);
    // Each write takes 50 ms longer, so that the stream is still flowing when Redis stops: partitions write
    // side by side, and the whole topic would otherwise be written before the first poll below.
    class SlowFeedStore extends FeedStore {
      override async write(activities: Parameters<FeedStore['write']>[0]): Promise<void> {
        await new Promise((r) => setTimeout(r, 50));
        await super.write(activities);
      }
    }
    const store = new SlowFeedStore(redis, { maxItems, ttlSeconds: 0 });
    const app = createApp({
      id: uniqueName('feed-cache'),
      brokers: [...localServers().kafkaBrokers],
      logger: silentLogger(),
      commitIntervalMs: 200,
    });
    feedAgent(app, topic, store, { size: 200, withinMs: 10 });
    await app.start();

    const countAll = async () => {
      let sum = 0;
      for (let u = 0; u < users; u += 50) {
        const pipe = redis.pipeline();
        for (let k = u; k < u + 50; k += 1) pipe.zcard(store.keyOf(`user-${k}`));
        for (const [, n] of (await pipe.exec()) ?? []) sum += Number(n);
      }
      return sum;
    };
    const until = async (cond: () => Promise<boolean>, ms: number, what: string) => {
      const deadline = Date.now() + ms;
      while (!(await cond().catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // Stop Redis once the feeds start filling, keep it down for 3 s, then start it again.
    await until(async () => (await countAll()) > 0, 60_000, 'first writes');
    const writtenBeforeOutage = await countAll();
    await redisServer.stop();
    await new Promise((r) => setTimeout(r, 3000));
    await redisServer.start();

    const expected = new Map<string, string[]>();
    for (let u = 0; u < users; u += 1) {
      const mine = activities
        .filter((a) => a.user === `user-${u}`)
        .map((a) => ({ score: a.timestamp.getTime(), member: memberOf(a) }))
        // Redis orders equal scores by member bytes; keep the newest `maxItems` the same way.
        .sort((a, b) => a.score - b.score || Buffer.compare(Buffer.from(a.member), Buffer.from(b.member)))
        .slice(-maxItems)
        .map((e) => e.member);
      expected.set(`user-${u}`, mine);
    }
    const admin = testKafka().admin();
    await admin.connect();
    const committed = async () => {
      const offsets = await admin.fetchOffsets({ groupId: app.id, topics: [topic.name] });
      return offsets[0]!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
    };
    await until(async () => (await committed()) === total, 120_000, 'every activity committed');
    await admin.disconnect();
    await app.stop();
    expect(writtenBeforeOutage).toBeLessThan(users * maxItems);
    // Each feed equals the model exactly: nothing lost in the outage, nothing extra.
    expect(await countAll()).toBe(users * maxItems);
    for (const [user, members] of expected) expect(await redis.zrange(store.keyOf(user), 0, -1)).toEqual(members);
    redis.disconnect();
  }, 240_000);
});
