import { loadConfig } from '@stream/core';
import { z } from 'zod';

const brokers = z
  .string({ error: 'required: comma-separated host:port list' })
  .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
  .refine((list) => list.length > 0 && list.every((b) => /^[^:\s]+:\d+$/.test(b)), 'expected host:port[,host:port…]');

/** feed-cache's environment. */
export const FeedCacheConfig = z.object({
  KAFKA_BROKERS: brokers,
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'expected redis://host:port' }),
  FEED_MAX_ITEMS: z.coerce.number().int().min(1).max(100_000).default(500),
  /** 0 keeps feeds forever; otherwise each write refreshes the feed's TTL. */
  FEED_TTL_SECONDS: z.coerce.number().int().min(0).default(0),
  HTTP_PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
  OPS_PORT: z.coerce.number().int().min(0).max(65_535).default(9464),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  KAFKA_GROUP_ID: z.string().min(1).default('feed-cache'),
});
export type FeedCacheConfig = z.output<typeof FeedCacheConfig>;

/** Reads and checks the environment once; throws naming every bad variable. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): FeedCacheConfig {
  return loadConfig(FeedCacheConfig, env);
}
