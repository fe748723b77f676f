import { feedActivities, type FeedActivity } from '@stream/contracts';
import { createTestApp, type TestHarness } from '@stream/core/testing';
import { localServers, requireServers, uniqueName } from '@stream/local-stack';
import { Redis } from 'ioredis';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { feedAgent } from './agent.js';
import { FeedStore } from './feed-store.js';
import { createFeedServer } from './http.js';
import { silentLogger } from '@stream/core';

let redis: Redis;
let prefix: string;
let h: TestHarness | undefined;

const activity = (user: string, id: string, at: string, message = `did ${id}`) => ({ id, user, message, timestamp: at });

async function start(maxItems = 500, ttlSeconds = 0) {
  const store = new FeedStore(redis, { maxItems, ttlSeconds, keyPrefix: prefix });
  h = await createTestApp({ id: uniqueName('feed-cache') }, (app) => feedAgent(app, feedActivities, store, { size: 50, withinMs: 5 }));
  return store;
}

describe('feed-cache on the memory transport with the real Redis', () => {
  beforeAll(async () => {
    await requireServers('redis');
    redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
  });
  afterEach(async () => {
    await h?.stop();
    h = undefined;
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  });
  afterAll(() => redis.quit());
  beforeEach(() => {
    prefix = `${uniqueName('feed')}:`;
  });

  it('serves the newest activities first, whatever order they arrived in', async () => {
    const store = await start();
    await h!.send(
      feedActivities,
      ...[activity('ann', 'a2', '2026-01-01T10:02:00Z'), activity('ann', 'a1', '2026-01-01T10:01:00Z'), activity('ann', 'a3', '2026-01-01T10:03:00Z')].map(
        (value) => ({ key: value.user, value }),
      ),
    );
    await h!.settle();
    expect((await store.read('ann', { limit: 10 })).map((i) => i.id)).toEqual(['a3', 'a2', 'a1']);
    expect(await store.read('ann', { limit: 1, before: new Date('2026-01-01T10:03:00Z') })).toEqual([
      { id: 'a2', message: 'did a2', timestamp: '2026-01-01T10:02:00.000Z' },
    ]);
  });

  it('keeps only the newest FEED_MAX_ITEMS per user and refreshes the TTL', async () => {
    const store = await start(3, 600);
    const values = Array.from({ length: 10 }, (_, i) => activity('bob', `b${i}`, new Date(Date.UTC(2026, 0, 1, 0, 0, 10 - i)).toISOString()));
    await h!.send(feedActivities, ...values.map((value) => ({ key: value.user, value })));
    await h!.settle();
    expect((await store.read('bob', { limit: 10 })).map((i) => i.id)).toEqual(['b0', 'b1', 'b2']);
    const ttl = await redis.ttl(store.keyOf('bob'));
    expect(ttl).toBeGreaterThan(590);
  });

  it('a redelivered activity changes nothing', async () => {
    const store = await start();
    const value = activity('cat', 'c1', '2026-01-01T00:00:00Z');
    await h!.send(feedActivities, { key: 'cat', value }, { key: 'cat', value }, { key: 'cat', value });
    await h!.settle();
    expect(await redis.zcard(store.keyOf('cat'))).toBe(1);
  });

  it('writes many users at once and matches a simple model', async () => {
    const store = await start(5);
    const sent: FeedActivity[] = [];
    const inputs = Array.from({ length: 1000 }, (_, i) => {
      const value = activity(`u${i % 37}`, `e${i}`, new Date(Date.UTC(2026, 0, 1) + ((i * 7919) % 100_000) * 1000).toISOString());
      sent.push({ ...value, timestamp: new Date(value.timestamp) });
      return { key: value.user, value };
    });
    await h!.send(feedActivities, ...inputs);
    await h!.settle(20_000);
    for (let u = 0; u < 37; u += 1) {
      const expected = sent
        .filter((a) => a.user === `u${u}`)
        .sort((a, b) => b.timestamp.getTime() - a.timestamp.getTime() || (a.id < b.id ? 1 : -1))
        .slice(0, 5)
        .map((a) => a.id);
      expect((await store.read(`u${u}`, { limit: 5 })).map((i) => i.id)).toEqual(expected);
    }
  });

  it('sends malformed records to the dead-letter topic and keeps going', async () => {
    const store = await start();
    await h!.sendRaw('feed_activities', { key: 'dan', value: '{"user": "dan", "message": ' });
    await h!.sendRaw('feed_activities', { key: 'dan', value: JSON.stringify({ id: 'd0', user: 'dan', message: 'x', timestamp: 'not a time' }) });
    await h!.send(feedActivities, { key: 'dan', value: activity('dan', 'd1', '2026-01-01T00:00:00Z') });
    await h!.settle();
    expect(h!.deadLetters(feedActivities).map((d) => d.errorClass)).toEqual(['DecodeError', 'SchemaValidationError']);
    expect(h!.deadLetters(feedActivities)[1]!.errorMessage).toMatch(/value\.timestamp/);
    expect((await store.read('dan', { limit: 10 })).map((i) => i.id)).toEqual(['d1']);
  });
});

describe('the feed HTTP API', () => {
  let base: string;
  let server: Server;
  let store: FeedStore;
  beforeAll(async () => {
    await requireServers('redis');
    redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
    prefix = `${uniqueName('feed-http')}:`;
    store = new FeedStore(redis, { maxItems: 100, ttlSeconds: 0, keyPrefix: prefix });
    await store.write([
      { id: 'x1', user: 'eve smith', message: 'hello', timestamp: new Date('2026-01-01T00:00:01Z') },
      { id: 'x2', user: 'eve smith', message: 'world', timestamp: new Date('2026-01-01T00:00:02Z') },
    ]);
    server = createFeedServer(store, silentLogger());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await redis.del(store.keyOf('eve smith'));
    await redis.quit();
  });

  it('returns the newest first, honouring limit and before', async () => {
    const all = await fetch(`${base}/feed/eve%20smith`);
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({
      user: 'eve smith',
      items: [
        { id: 'x2', message: 'world', timestamp: '2026-01-01T00:00:02.000Z' },
        { id: 'x1', message: 'hello', timestamp: '2026-01-01T00:00:01.000Z' },
      ],
      truncated: false,
    });
    const older = await (await fetch(`${base}/feed/eve%20smith?limit=1&before=2026-01-01T00:00:02Z`)).json();
    expect(older).toMatchObject({ items: [{ id: 'x1' }] });
    expect(await (await fetch(`${base}/feed/nobody`)).json()).toEqual({ user: 'nobody', items: [], truncated: false });
  });

  it.each([
    ['limit=0', /limit must be at least 1/],
    ['limit=abc', /limit must be a number/],
    ['limit=100000', /at most 500/],
    ['before=yesterday', /before must be an ISO-8601 time/],
  ])('answers 400 to %s', async (query, message) => {
    const res = await fetch(`${base}/feed/eve?${query}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  });

  it('answers a malformed or host-like request target with a 4xx and keeps serving', async () => {
    const port = (server.address() as AddressInfo).port;
    for (const path of ['//', '///', '//[', '//feed/eve', '/%', '*']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect([400, 404], `GET ${path}`).toContain(status);
    }
    expect((await fetch(`${base}/feed/eve%20smith`)).status).toBe(200);
  });

  it('answers a plain 404 elsewhere', async () => {
    for (const path of ['/', '/feed', '/feed/a/b', '/admin']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: 'not found' });
    }
  });
});
