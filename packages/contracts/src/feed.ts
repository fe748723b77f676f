import { defineTopic } from '@stream/core';
import { z } from 'zod';
import { isoDate } from './dates.js';

/** Something a user did, shown in their feed. Keyed by user. */
export const FeedActivity = z.object({
  /** Unique per activity: makes the Redis member deterministic, so a redelivery changes nothing. */
  id: z.string().min(1).max(200),
  user: z.string().min(1).max(200),
  message: z.string().max(10_000),
  timestamp: isoDate(),
});
export type FeedActivity = z.output<typeof FeedActivity>;

/** `feed_activities`: activities keyed by user. */
export const feedActivities = defineTopic({ name: 'feed_activities', key: z.string().min(1), value: FeedActivity, partitions: 6 });
