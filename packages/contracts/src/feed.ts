import { defineTopic } from '@stream/core';
import { z } from 'zod';
import { isoDate } from './dates.js';
import { identifier, LIMITS, text } from './limits.js';

/** Something a user did, shown in their feed. Keyed by user. */
export const FeedActivity = z.object({
  /** Unique per activity: makes the Redis member deterministic, so a redelivery changes nothing. */
  id: identifier(),
  /** The feed's owner: a Redis key (`feed:<user>`) and a URL segment (`/feed/:user`, percent-encoded). */
  user: identifier(),
  message: text(LIMITS.messageLength),
  timestamp: isoDate(),
});
export type FeedActivity = z.output<typeof FeedActivity>;

/** `feed_activities`: activities keyed by user. */
export const feedActivities = defineTopic({ name: 'feed_activities', key: identifier(), value: FeedActivity, partitions: 6 });
