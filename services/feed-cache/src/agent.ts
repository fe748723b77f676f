import type { feedActivities } from '@stream/contracts';
import type { App } from '@stream/core';
import type { FeedStore } from './feed-store.js';

/**
 * Writes activities to the feed store in batches: whatever is waiting (up to 500, or what arrived within
 * 20 ms) goes to Redis in one round trip. A failed write (Redis down or slow) fails the batch; its records
 * wait with backoff until Redis answers (never dead-lettered for an outage, never committed early): the
 * default classification knows ioredis' errors. A record whose write keeps failing while Redis answers goes
 * to `feed_activities.dlq` after 5 attempts, as do records that do not fit the contract.
 */
export function feedAgent(app: App, topic: typeof feedActivities, store: FeedStore, batch = { size: 500, withinMs: 20 }): void {
  app.stream(topic, { name: 'feed-writer', prefetch: batch.size * 2, retry: { attempts: 5, backoff: { initialMs: 100, maxMs: 5000 } } }, async (stream) => {
    for await (const activities of stream.take(batch.size, { within: batch.withinMs })) await store.write(activities);
  });
}
