import { defineService } from '@stream/core';
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** A duration such as `5m`, `30s`, `1h`, `250ms` or `1h30m`, in milliseconds, within [min, max]. */
const duration = (fallback: string, min: number, max: number) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined || ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message: `expected a duration like 250ms, 30s, 5m, 1h (between ${min} ms and ${max} ms)` });
        return z.NEVER;
      }
      return ms;
    });

/** execution-quality's own environment; KAFKA_*, OPS_* and LOG_LEVEL come with every service (see `defineService`). */
export const ExecutionQualityConfig = z.object({
  INFLUX_URL: z.url({ protocol: /^https?$/, error: 'expected http(s)://host:port' }),
  /** `user:password` on InfluxDB 1.8 with auth on (any non-empty value with auth off), an API token on 2.x. */
  INFLUX_TOKEN: z.string({ error: 'required' }).min(1, 'required'),
  INFLUX_ORG: z.string({ error: 'required' }).min(1, 'required'),
  /** `database/retention-policy` on 1.8 (e.g. `markets/autogen`), a bucket name on 2.x. */
  INFLUX_BUCKET: z.string({ error: 'required' }).min(1, 'required'),
  /** How old the last price before an execution may be. */
  MARKET_LOOKBACK: duration('5m', 1, 7 * 86_400_000),
  /** Longest an InfluxDB query may take before it is aborted and retried. */
  INFLUX_TIMEOUT: duration('10s', 100, 600_000),
  /** Widest span of execution times one batched query covers (splits a batch whose orders lie further apart). */
  LOOKUP_MAX_SPAN: duration('15m', 1, 7 * 86_400_000),
  /** Orders of one partition looked up together (one Flux query per symbol and span per batch). */
  EXECUTION_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  /** How long the first order of a batch waits for more. */
  EXECUTION_BATCH_WAIT: duration('20ms', 0, 60_000),
  /** Cap on orders in flight across partitions; unset: what each partition may hold bounds it. */
  EXECUTION_CONCURRENCY: z.coerce.number().int().min(1).max(1_000_000).optional(),
  /** Width of the slippage summary's tumbling windows of execution time (`execution_quality_summary`). */
  SUMMARY_WINDOW: duration('1m', 1000, 86_400_000),
  /**
   * How long after a window's end (in execution time) orders still count in it; a later order is
   * dead-lettered from the summary (its report is sent all the same). Raise it where orders arrive far
   * out of execution order.
   */
  SUMMARY_GRACE: duration('30s', 0, 7 * 86_400_000),
});

/** The execution-quality service: its id and its own variables. */
export const executionQualityService = defineService('execution-quality', ExecutionQualityConfig);
export type ExecutionQualityConfig = ReturnType<typeof executionQualityService.readConfig>;

/** Reads and checks the environment once; throws naming every bad variable (never echoing values). */
export function readConfig(env: NodeJS.ProcessEnv = process.env): ExecutionQualityConfig {
  return executionQualityService.readConfig(env);
}
