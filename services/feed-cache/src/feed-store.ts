import type { FeedActivity } from '@stream/contracts';
import type { Redis } from 'ioredis';

/** One entry of a user's feed as the HTTP API returns it. */
export interface FeedItem {
  readonly id: string;
  readonly message: string;
  readonly timestamp: string;
}

export interface FeedStoreOptions {
  /** Entries kept per user: the newest by timestamp. */
  readonly maxItems: number;
  /** Seconds a feed lives after its last write; 0 for no expiry. */
  readonly ttlSeconds: number;
  readonly keyPrefix?: string;
}

/**
 * The sorted-set member of an activity. Deterministic (fixed field order) so a redelivered activity is the
 * same member with the same score, and ZADD changes nothing: writes are idempotent.
 */
export function memberOf(activity: FeedActivity): string {
  return JSON.stringify([activity.id, activity.message]);
}

function parseMember(member: string, score: string): FeedItem {
  const [id, message] = JSON.parse(member) as [string, string];
  return { id, message, timestamp: new Date(Number(score)).toISOString() };
}

/**
 * Users' feeds in Redis: one sorted set per user (`feed:<user>`), scored by the activity's time in ms.
 * A batch of activities is written in one MULTI round trip: ZADD each, then per user trim to the newest
 * `maxItems` and refresh the TTL, so a reader never sees an untrimmed feed.
 */
export class FeedStore {
  readonly #redis: Redis;
  readonly #options: Required<FeedStoreOptions>;

  constructor(redis: Redis, options: FeedStoreOptions) {
    this.#redis = redis;
    this.#options = { keyPrefix: 'feed:', ...options };
  }

  keyOf(user: string): string {
    return `${this.#options.keyPrefix}${user}`;
  }

  async write(activities: readonly FeedActivity[]): Promise<void> {
    if (activities.length === 0) return;
    const multi = this.#redis.multi();
    const users = new Set<string>();
    for (const activity of activities) {
      multi.zadd(this.keyOf(activity.user), activity.timestamp.getTime(), memberOf(activity));
      users.add(activity.user);
    }
    for (const user of users) {
      const key = this.keyOf(user);
      // Ranks are ascending by score: removing 0..-(max+1) keeps the newest `maxItems`.
      multi.zremrangebyrank(key, 0, -(this.#options.maxItems + 1));
      if (this.#options.ttlSeconds > 0) multi.expire(key, this.#options.ttlSeconds);
    }
    const results = await multi.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw new Error(`feed write failed: ${failed?.[0]?.message ?? 'transaction discarded'}`, { cause: failed?.[0] });
  }

  /** The newest entries first, optionally only those strictly before `before`. */
  async read(user: string, options: { limit: number; before?: Date }): Promise<FeedItem[]> {
    const max = options.before ? `(${options.before.getTime()}` : '+inf';
    const flat = await this.#redis.zrevrangebyscore(this.keyOf(user), max, '-inf', 'WITHSCORES', 'LIMIT', 0, options.limit);
    const items: FeedItem[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) items.push(parseMember(flat[i]!, flat[i + 1]!));
    return items;
  }
}
