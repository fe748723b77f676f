import { feedActivities } from '@stream/contracts';
import { silentLogger } from '@stream/core';
import { createTestApp, type TestHarness } from '@stream/core/testing';
import { localServers, requireServers, uniqueName } from '@stream/local-stack';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import type { Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { feedAgent } from './agent.js';
import { readConfig } from './config.js';
import { FeedStore } from './feed-store.js';
import { createFeedServer, type FeedServerOptions } from './http.js';

let redis: Redis;
const prefixes: string[] = [];
const servers: Server[] = [];
let h: TestHarness | undefined;

beforeAll(async () => {
  await requireServers('redis');
  redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

/** A store of the test's own keys. */
function newStore(maxItems = 500, ttlSeconds = 0): FeedStore {
  const keyPrefix = `${uniqueName('feed-sec')}:`;
  prefixes.push(keyPrefix);
  return new FeedStore(redis, { maxItems, ttlSeconds, keyPrefix });
}

async function serve(store: FeedStore, options: FeedServerOptions = {}): Promise<{ base: string; port: number }> {
  const server = createFeedServer(store, silentLogger(), options);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}`, port };
}

/**
 * Sends `raw` on a new connection and resolves with everything the server sent back before closing it (the
 * requests ask for `Connection: close`). The socket is not half-closed after the request: Node's HTTP server
 * ends a connection whose client half-closed before an asynchronous answer (`httpAllowHalfOpen` is false),
 * so a feed read would come back empty (found by the property below: `GET /feed/%00?%`, 299 of 300 empty).
 */
function rawRequest(port: number, raw: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(error)));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(raw);
  });
}

const statusOf = (response: string): number => Number(/^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1] ?? 0);

describe('feed-cache store bounds (#20)', () => {
  it('dead-letters activities dated far ahead, so 500 of them cannot freeze a feed', async () => {
    const store = newStore(500);
    h = await createTestApp({ id: uniqueName('feed-sec') }, (app) => feedAgent(app, feedActivities, store, { size: 50, withinMs: 5 }));
    const future = Array.from({ length: 500 }, (_, i) => ({ id: `f${i}`, user: 'fay', message: 'from the future', timestamp: '2262-04-10T00:00:00Z' }));
    await h.send(feedActivities, ...future.map((value) => ({ key: 'fay', value })));
    // 9999 is outside the contract's window already: dead-lettered by the contract.
    await h.sendRaw('feed_activities', { key: 'fay', value: JSON.stringify({ id: 'f9999', user: 'fay', message: 'x', timestamp: '9999-12-31T23:59:59Z' }) });
    const now = Date.now();
    const real = Array.from({ length: 5 }, (_, i) => ({ id: `r${i}`, user: 'fay', message: 'real', timestamp: new Date(now - i * 1000).toISOString() }));
    await h.send(feedActivities, ...real.map((value) => ({ key: 'fay', value })));
    await h.settle(20_000);
    expect((await store.read('fay', { limit: 10 })).map((i) => i.id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    const letters = h.deadLetters(feedActivities);
    expect(letters).toHaveLength(501);
    expect(letters.filter((l) => l.errorClass === 'NonRetryableError')).toHaveLength(500);
    expect(letters[0]!.errorMessage).toMatch(/^activity f0: timestamp 2262-04-10T00:00:00.000Z is more than 300 s ahead of now/);
    expect(letters.find((l) => l.errorClass === 'SchemaValidationError')?.errorMessage).toMatch(/value\.timestamp/);
  });

  it('dead-letters an activity whose Kafka key is not its user, and one older than the window when it is set', async () => {
    const store = newStore();
    h = await createTestApp({ id: uniqueName('feed-sec') }, (app) =>
      feedAgent(app, feedActivities, store, { size: 50, withinMs: 5 }, { maxFutureMs: 60_000, maxAgeMs: 24 * 3600_000 }),
    );
    const now = Date.now();
    const at = (ms: number) => new Date(now + ms).toISOString();
    await h.send(
      feedActivities,
      { key: 'mallory', value: { id: 'm1', user: 'gus', message: 'not yours', timestamp: at(0) } },
      { key: 'gus', value: { id: 'g1', user: 'gus', message: 'ok', timestamp: at(-1000) } },
      { key: 'gus', value: { id: 'g-old', user: 'gus', message: 'two days old', timestamp: at(-48 * 3600_000) } },
      { key: 'gus', value: { id: 'g-soon', user: 'gus', message: 'skewed clock', timestamp: at(30_000) } },
      { key: 'gus', value: { id: 'g-late', user: 'gus', message: 'too far ahead', timestamp: at(120_000) } },
    );
    await h.settle();
    expect((await store.read('gus', { limit: 10 })).map((i) => i.id)).toEqual(['g-soon', 'g1']);
    expect(await redis.exists(store.keyOf('mallory'))).toBe(0);
    // Keys mallory and gus are on different partitions: their dead letters come in either order.
    const reasons = h.deadLetters(feedActivities).map((l) => l.errorMessage);
    expect(reasons).toHaveLength(3);
    expect(reasons).toContain('activity m1: its Kafka key "mallory" is not its user "gus"');
    const gus = reasons.filter((r) => !r.startsWith('activity m1'));
    expect(gus[0]).toMatch(/^activity g-old: timestamp .* is more than 86400 s before now/);
    expect(gus[1]).toMatch(/^activity g-late: timestamp .* is more than 60 s ahead of now/);
  });

  it('keeps the newest 500 per user with a 30-day TTL by default, and names bad settings', () => {
    const config = readConfig({ KAFKA_BROKERS: '127.0.0.1:9092', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(config).toMatchObject({
      FEED_MAX_ITEMS: 500,
      FEED_TTL_SECONDS: 30 * 24 * 3600,
      FEED_MAX_FUTURE_SECONDS: 300,
      FEED_MAX_AGE_SECONDS: 0,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: 8080,
      HTTP_MAX_LIMIT: 500,
      HTTP_MAX_RESPONSE_BYTES: 1024 * 1024,
      HTTP_REQUEST_TIMEOUT_MS: 10_000,
    });
    expect(config.FEED_API_TOKEN).toBeUndefined();
    const bad = () =>
      readConfig({
        KAFKA_BROKERS: '127.0.0.1:9092',
        REDIS_URL: 'redis://127.0.0.1:6379',
        HTTP_HOST: 'not a host',
        FEED_API_TOKEN: 'short-secret',
        HTTP_MAX_RESPONSE_BYTES: '1000',
      });
    expect(bad).toThrow(/HTTP_HOST: expected an IP address/);
    expect(bad).toThrow(/FEED_API_TOKEN: must be at least 16 characters/);
    expect(bad).toThrow(/HTTP_MAX_RESPONSE_BYTES: must be at least 100000/);
    expect(bad).not.toThrow(/short-secret/);
  });
});

describe('the feed API’s limits (#20)', () => {
  it('caps the response bytes and says it truncated; the rest is one `before` away', async () => {
    const store = newStore();
    // The case: 500 messages of 10,000 control characters, each escaped to 6 bytes in JSON (30 MB).
    const t0 = Date.UTC(2026, 0, 1);
    await store.write(
      Array.from({ length: 500 }, (_, i) => ({ id: `c${i}`, user: 'ctl', message: '\u0001'.repeat(10_000), timestamp: new Date(t0 + i * 1000) })),
    );
    const { base } = await serve(store);
    const res = await fetch(`${base}/feed/ctl?limit=500`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024 * 1024);
    const body = JSON.parse(text) as { items: { id: string; timestamp: string }[]; truncated: boolean };
    expect(body.truncated).toBe(true);
    expect(body.items.length).toBeGreaterThan(0);
    expect(body.items.length).toBeLessThan(500);
    expect(body.items[0]!.id).toBe('c499');
    const last = body.items.at(-1)!;
    const next = (await (await fetch(`${base}/feed/ctl?limit=1&before=${encodeURIComponent(last.timestamp)}`)).json()) as typeof body;
    expect(next.items.map((i) => i.id)).toEqual([`c${499 - body.items.length}`]);
    expect(next.truncated).toBe(false);
  });

  it('refuses a limit above the maximum with a 400 naming it', async () => {
    const { base } = await serve(newStore(), { maxLimit: 100 });
    const res = await fetch(`${base}/feed/ann?limit=101`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'limit must be at most 100' });
    expect((await fetch(`${base}/feed/ann?limit=100`)).status).toBe(200);
  });

  it('asks for the bearer token when one is set, before looking at the path', async () => {
    const token = 'feed-token-7c1e5a9b42d0';
    const { base } = await serve(newStore(), { token });
    for (const headers of [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Bearer ${token}x` },
      { authorization: token },
      { authorization: `Basic ${token}` },
    ]) {
      for (const path of ['/feed/ann', '/admin', '/%']) {
        const res = await fetch(`${base}${path}`, { headers });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="feed"');
        expect(await res.text()).not.toContain(token);
      }
    }
    expect((await fetch(`${base}/feed/ann`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${base}/feed/ann`, { headers: { authorization: `bearer ${token}` } })).status).toBe(200);
  });

  it('cuts off a client that never finishes its headers', async () => {
    const { port } = await serve(newStore(), { requestTimeoutMs: 500 });
    const socket = connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.write('GET /feed/ann HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    // The server closes the connection on its own: no end from this side.
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(Buffer.concat(received).toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
  }, 20_000);

  it('answers any request line, path, percent-encoding or query with a 2xx or 4xx, never a 5xx or a crash', async () => {
    const { base, port } = await serve(newStore());
    const segment = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.string({
        unit: fc.constantFrom('%', '/', '?', '&', '=', '#', 'a', 'F', '0', '9', 'é', '\u0000', ' ', '\\', '[', ']', '@', ':', '.', '+'),
        maxLength: 30,
      }),
      fc.constantFrom(
        '%',
        '%%',
        '%zz',
        '%E9',
        '%C3',
        '%ED%A0%80',
        '%00',
        '..',
        '//[',
        '*',
        'limit=1e3',
        'limit=-0',
        'before=9999-99-99T99:99:99Z',
        'limit=500&limit=1',
      ),
    );
    const target = fc.oneof(
      fc.tuple(segment, segment).map(([user, query]) => `/feed/${user}?${query}`),
      fc.array(segment, { maxLength: 4 }).map((parts) => `/${parts.join('/')}`),
      segment,
    );
    const method = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS', 'CONNECT', 'get', 'G ET', ''), fc.string({ maxLength: 8 }));
    const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', 'HTTP/1.1 extra', '', 'http/1.1');
    const extra = fc.constantFrom(
      '',
      'Upgrade: websocket\r\nConnection: Upgrade\r\n',
      'Content-Length: abc\r\n',
      'Authorization: Bearer \u00ff\r\n',
      'X: \u0001\r\n',
      `X-Big: ${'a'.repeat(20_000)}\r\n`,
    );
    const line = fc.oneof(
      fc.tuple(method, target, version).map(([m, t, v]) => Buffer.from(`${m} ${t} ${v}`, 'utf8')),
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    );
    await fc.assert(
      fc.asyncProperty(line, extra, async (requestLine, header) => {
        const response = await rawRequest(port, Buffer.concat([requestLine, Buffer.from(`\r\nHost: x\r\n${header}Connection: close\r\n\r\n`, 'latin1')]));
        const status = statusOf(response);
        expect(status, JSON.stringify(requestLine.toString('latin1'))).toBeGreaterThanOrEqual(200);
        expect(status, JSON.stringify(requestLine.toString('latin1'))).toBeLessThan(500);
        expect([200, 400, 401, 404, 405, 408, 413, 414, 431, 505]).toContain(status);
      }),
      { numRuns: 400 },
    );
    // The counterexample that found the half-close above, every time.
    for (let i = 0; i < 50; i++) {
      expect(statusOf(await rawRequest(port, 'GET /feed/%00?% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toBe(200);
    }
    // And it still serves.
    expect((await fetch(`${base}/feed/ann`)).status).toBe(200);
  }, 120_000);
});
