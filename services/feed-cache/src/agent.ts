import type { FeedActivity, feedActivities } from '@stream/contracts';
import { NonRetryableError, type App } from '@stream/core';
import type { FeedStore } from './feed-store.js';

/** Which activities a feed takes: how far from now their timestamps may be. */
export interface FeedBounds {
  /** An activity dated more than this ahead of now is refused. Default 5 minutes (clock skew). */
  readonly maxFutureMs?: number;
  /** An activity older than this is refused; 0 or unset takes any age the contract allows. */
  readonly maxAgeMs?: number;
  /** The clock; default `Date.now`. */
  readonly now?: () => number;
}

/** Default of {@link FeedBounds.maxFutureMs}: 5 minutes. */
export const DEFAULT_MAX_FUTURE_MS = 5 * 60_000;

/**
 * Why an activity (consumed under Kafka key `key`) may not go into a feed, or undefined when it may: its key
 * is not its user (it would be written to another user's feed than its partition says), or its timestamp is
 * outside the window around now (one dated 9999 would stay the newest of its feed forever and push every
 * real activity out of it).
 */
export function feedProblem(activity: FeedActivity, key: string | null, bounds: FeedBounds = {}): string | undefined {
  if (key !== activity.user) return `activity ${activity.id}: its Kafka key ${JSON.stringify(key)} is not its user ${JSON.stringify(activity.user)}`;
  const now = (bounds.now ?? Date.now)();
  const at = activity.timestamp.getTime();
  const maxFutureMs = bounds.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  if (at > now + maxFutureMs) {
    return `activity ${activity.id}: timestamp ${activity.timestamp.toISOString()} is more than ${maxFutureMs / 1000} s ahead of now (${new Date(now).toISOString()})`;
  }
  const maxAgeMs = bounds.maxAgeMs ?? 0;
  if (maxAgeMs > 0 && at < now - maxAgeMs) {
    return `activity ${activity.id}: timestamp ${activity.timestamp.toISOString()} is more than ${maxAgeMs / 1000} s before now (${new Date(now).toISOString()})`;
  }
  return undefined;
}

/**
 * Writes activities to the feed store in batches per partition: whatever a partition has waiting (up to
 * 500, or what arrived within 20 ms) goes to Redis in one pipeline, and the partitions write side by side.
 * A failed write (Redis down or slow) fails the batch; its records wait with backoff until Redis answers
 * (never dead-lettered for an outage, never committed early): the default classification knows ioredis'
 * errors. A record whose write keeps failing while Redis answers goes to `feed_activities.dlq` after
 * 5 attempts, as do records that do not fit the contract and, at once, each activity {@link feedProblem}
 * refuses (key not its user, timestamp outside the window), without the rest of its batch.
 */
export function feedAgent(app: App, topic: typeof feedActivities, store: FeedStore, batch = { size: 500, withinMs: 20 }, bounds: FeedBounds = {}): void {
  app.agent(
    topic,
    { name: 'feed-writer', batch: { maxRecords: batch.size, maxWaitMs: batch.withinMs }, retry: { attempts: 5, backoff: { initialMs: 100, maxMs: 5000 } } },
    async (records) => {
      const outcomes = records.map(({ value, ctx }) => {
        const problem = feedProblem(value, ctx.key, bounds);
        return problem === undefined ? undefined : new NonRetryableError(problem, { context: { activityId: value.id } });
      });
      const accepted = records.filter((_, i) => outcomes[i] === undefined).map((r) => r.value);
      if (accepted.length > 0) await store.write(accepted);
      return outcomes;
    },
  );
}
