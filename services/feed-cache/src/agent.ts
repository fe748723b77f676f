import type { feedActivities } from '@stream/contracts';
import type { App } from '@stream/core';
import type { FeedStore } from './feed-store.js';

/**
 * Writes activities to the feed store in batches per partition: whatever a partition has waiting (up to
 * 500, or what arrived within 20 ms) goes to Redis in one pipeline, and the partitions write side by side.
 * A failed write (Redis down or slow) fails the batch; its records wait with backoff until Redis answers
 * (never dead-lettered for an outage, never committed early): the default classification knows ioredis'
 * errors. A record whose write keeps failing while Redis answers goes to `feed_activities.dlq` after
 * 5 attempts, as do records that do not fit the contract.
 */
export function feedAgent(app: App, topic: typeof feedActivities, store: FeedStore, batch = { size: 500, withinMs: 20 }): void {
  app.agent(
    topic,
    { name: 'feed-writer', batch: { maxRecords: batch.size, maxWaitMs: batch.withinMs }, retry: { attempts: 5, backoff: { initialMs: 100, maxMs: 5000 } } },
    async (records) => {
      await store.write(records.map((r) => r.value));
    },
  );
}
