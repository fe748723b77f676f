import { defineService, httpHost, httpPort } from '@stream/core';
import { z } from 'zod';

/** feed-cache's own environment; KAFKA_*, OPS_* and LOG_LEVEL come with every service (see `defineService`). */
export const FeedCacheConfig = z.object({
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'expected redis://host:port' }),
  /** Entries kept per user: the newest by timestamp. */
  FEED_MAX_ITEMS: z.coerce.number().int().min(1).max(100_000).default(500),
  /** Each write refreshes the feed's TTL: a feed nobody writes to goes after this. 0 keeps feeds forever. Default 30 days. */
  FEED_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .default(30 * 24 * 3600),
  /** An activity dated further ahead of now than this is dead-lettered (it would stay on top of its feed). */
  FEED_MAX_FUTURE_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .max(366 * 24 * 3600)
    .default(300),
  /** An activity older than this is dead-lettered; 0 (the default) takes any age the contract allows. */
  FEED_MAX_AGE_SECONDS: z.coerce.number().int().min(0).default(0),
  /** Address of the feed API: loopback unless set (the image sets 0.0.0.0). */
  HTTP_HOST: httpHost(),
  HTTP_PORT: httpPort(8080),
  /** When set, the API asks every request for `Authorization: Bearer <token>`. Never logged, never echoed. */
  FEED_API_TOKEN: z.string().min(16, 'must be at least 16 characters when set').optional(),
  /** Largest `limit` a request may ask for (above: 400). */
  HTTP_MAX_LIMIT: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Largest response body; entries past it are left out and the answer says `"truncated": true`. */
  HTTP_MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .min(100_000, 'must be at least 100000 (one entry of the longest message fits)')
    .default(1024 * 1024),
  /** A request whose headers or body take longer than this is cut off with a 408. */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
});

/** The feed-cache service: its id and its own variables. */
export const feedCacheService = defineService('feed-cache', FeedCacheConfig);
export type FeedCacheConfig = ReturnType<typeof feedCacheService.readConfig>;

/** Reads and checks the environment once; throws naming every bad variable. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): FeedCacheConfig {
  return feedCacheService.readConfig(env);
}
