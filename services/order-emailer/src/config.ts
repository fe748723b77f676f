import { defineService } from '@stream/core';
import { z } from 'zod';

/** order-emailer's own environment; KAFKA_*, OPS_* and LOG_LEVEL come with every service (see `defineService`). */
export const OrderEmailerConfig = z
  .object({
    /** The email API endpoint that confirmations are POSTed to. */
    EMAILER_URL: z.url({ protocol: /^https?$/, error: 'expected http(s)://host[:port]/path' }),
    /** Bearer token of the email API. Never logged, never echoed in errors. */
    EMAILER_TOKEN: z.string({ error: 'required: the email API bearer token' }).min(1, 'must not be empty'),
    /** Whole-request timeout of one POST. */
    EMAILER_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5000),
    /** Orders in flight at once (orders with the same id still run one at a time). */
    EMAILER_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(16),
    /** Upper bound of a `Retry-After` wait; longer values from the API are cut to this. */
    EMAILER_MAX_RETRY_AFTER_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
    REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'expected redis://host:port' }),
    /** How long a "sent" record is kept: redeliveries and DLQ replays within this window send nothing. */
    DEDUPE_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .default(7 * 24 * 3600),
    /**
     * How long a worker's "sending now" claim lives. A crashed worker's claim expires after this and another
     * worker sends (same Idempotency-Key). Must exceed EMAILER_TIMEOUT_MS; default: timeout + 10 s.
     */
    DEDUPE_LEASE_MS: z.coerce.number().int().min(100).optional(),
    DEDUPE_KEY_PREFIX: z.string().min(1).default('emailer:order:'),
  })
  .transform(({ DEDUPE_LEASE_MS, ...rest }) => ({ ...rest, DEDUPE_LEASE_MS: DEDUPE_LEASE_MS ?? rest.EMAILER_TIMEOUT_MS + 10_000 }))
  .refine((c) => c.DEDUPE_LEASE_MS > c.EMAILER_TIMEOUT_MS, {
    path: ['DEDUPE_LEASE_MS'],
    message: 'must be greater than EMAILER_TIMEOUT_MS (a claim must outlive the request it guards)',
  });

/** The order-emailer service: its id and its own variables. */
export const orderEmailerService = defineService('order-emailer', OrderEmailerConfig);
export type OrderEmailerConfig = ReturnType<typeof orderEmailerService.readConfig>;

/** Reads and checks the environment once; throws naming every bad variable (values, the token included, are never echoed). */
export function readConfig(env: NodeJS.ProcessEnv = process.env): OrderEmailerConfig {
  return orderEmailerService.readConfig(env);
}
