import { localServers, requireServers, uniqueName, waitUntil } from '@stream/local-stack';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DedupeStore } from './dedupe.js';

let redis: Redis;
const prefixes: string[] = [];

function store(leaseMs = 5000, ttlSeconds = 600) {
  const keyPrefix = `${uniqueName('emailer-dedupe')}:`;
  prefixes.push(keyPrefix);
  return new DedupeStore(redis, { leaseMs, ttlSeconds, keyPrefix });
}

describe('DedupeStore on the real Redis', () => {
  beforeAll(async () => {
    await requireServers('redis');
    redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
  });
  afterEach(async () => {
    for (const prefix of prefixes.splice(0)) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
    }
  });
  afterAll(() => redis.quit());

  it('gives a free order to exactly one of many concurrent claimers', async () => {
    const s = store();
    const results = await Promise.all(Array.from({ length: 20 }, () => s.claim('o-1')));
    expect(results.filter((r) => r.state === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.state === 'busy')).toHaveLength(19);
    const value = await redis.get(s.keyOf('o-1'));
    expect(value).toMatch(/^pending:[0-9a-f-]{36}$/);
    const pttl = await redis.pttl(s.keyOf('o-1'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5000);
  });

  it('records sent with a TTL, after which claims say sent', async () => {
    const s = store();
    const first = await s.claim('o-1');
    expect(first.state).toBe('claimed');
    await s.markSent('o-1');
    expect(await s.claim('o-1')).toEqual({ state: 'sent' });
    expect(await s.state('o-1')).toBe('sent');
    const ttl = await redis.ttl(s.keyOf('o-1'));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  it('releases only its own claim', async () => {
    const s = store();
    const mine = await s.claim('o-1');
    if (mine.state !== 'claimed') throw new Error('expected a claim');
    expect(await s.release(mine.claim)).toBe(true);
    expect(await s.state('o-1')).toBeNull();

    const theirs = await s.claim('o-1');
    expect(theirs.state).toBe('claimed');
    expect(await s.release(mine.claim)).toBe(false); // a stale claim never deletes another worker's
    expect(await s.state('o-1')).toBe('pending');
    await s.markSent('o-1');
    expect(await s.release(mine.claim)).toBe(false); // nor a sent record
    expect(await s.state('o-1')).toBe('sent');
  });

  it('lets a crashed worker’s claim run out after its lease', async () => {
    const s = store(150);
    expect((await s.claim('o-1')).state).toBe('claimed');
    expect((await s.claim('o-1')).state).toBe('busy');
    await waitUntil(async () => (await s.state('o-1')) === null, 'the lease to run out', 2000);
    expect((await s.claim('o-1')).state).toBe('claimed');
  });

  it('never reads an unknown value as sent', async () => {
    const s = store();
    await redis.set(s.keyOf('o-1'), 'garbage', 'PX', 5000);
    expect(await s.claim('o-1')).toEqual({ state: 'busy' });
  });
});
