import type { executionQuality, orders } from '@stream/contracts';
import type { App, RetryOptions } from '@stream/core';
import type { PriceLookup } from './prices.js';
import { executionReport } from './report.js';

export interface ExecutionQualityAgentOptions {
  /** Orders in flight at once; their lookups are batched. Default 64. */
  readonly concurrency?: number;
  /** Default: retry until InfluxDB answers, 200 ms doubling to 5 s (an outage loses nothing). */
  readonly retry?: RetryOptions;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: Infinity, backoff: { initialMs: 200, maxMs: 5000 } };

/**
 * For each order: look up the market price of its symbol at its execution time (batched with the other
 * orders in flight) and send its report to `output`, keyed by order id.
 *
 * Exactly-once: the report and the order's offset commit in one Kafka transaction, so each order has one
 * report for read-committed consumers, whatever retries or restarts happened. A failed lookup (InfluxDB
 * down, slow, erroring) fails the attempt: nothing is sent, and the record is retried with backoff until it
 * succeeds; the partition's commit does not pass it meanwhile. Orders that do not decode or fit the
 * contract go to `<input>.dlq`.
 */
export function executionQualityAgent(
  app: App,
  input: typeof orders,
  output: typeof executionQuality,
  prices: PriceLookup,
  options: ExecutionQualityAgentOptions = {},
): void {
  app.agent(
    input,
    { name: 'execution-quality', concurrency: options.concurrency ?? 64, exactlyOnce: true, retry: options.retry ?? DEFAULT_RETRY },
    async (order, ctx) => {
      const quote = await prices.lookup(order.symbol, order.executedAt, ctx.signal);
      await ctx.send(output, { key: order.id, value: executionReport(order, quote) });
    },
  );
}
