import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localServers, requireServers, uniqueName } from '../index.js';

describe('Redis through ioredis', () => {
  let redis: Redis;
  const key = uniqueName('smoke:feed');

  beforeAll(async () => {
    await requireServers('redis');
    redis = new Redis(localServers().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  afterAll(async () => {
    await redis.del(key);
    await redis.quit();
  });

  it('keeps a sorted set ordered by score', async () => {
    await redis.zadd(key, 300, 'c', 100, 'a', 200, 'b');
    expect(await redis.zrange(key, 0, -1)).toEqual(['a', 'b', 'c']);
    expect(await redis.zrange(key, 0, 1, 'REV')).toEqual(['c', 'b']);
    // ZADD of an existing member with the same score changes nothing: the basis of idempotent writes.
    expect(await redis.zadd(key, 100, 'a')).toBe(0);
    expect(await redis.zcard(key)).toBe(3);
  });
});
