import { defineService } from '@stream/core';
import { z } from 'zod';

/** feed-cache's own environment; KAFKA_*, OPS_* and LOG_LEVEL come with every service (see `defineService`). */
export const FeedCacheConfig = z.object({
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'expected redis://host:port' }),
  FEED_MAX_ITEMS: z.coerce.number().int().min(1).max(100_000).default(500),
  /** 0 keeps feeds forever; otherwise each write refreshes the feed's TTL. */
  FEED_TTL_SECONDS: z.coerce.number().int().min(0).default(0),
  HTTP_PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
});

/** The feed-cache service: its id and its own variables. */
export const feedCacheService = defineService('feed-cache', FeedCacheConfig);
export type FeedCacheConfig = ReturnType<typeof feedCacheService.readConfig>;

/** Reads and checks the environment once; throws naming every bad variable. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): FeedCacheConfig {
  return feedCacheService.readConfig(env);
}
