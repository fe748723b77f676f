import type { executionQuality, orders } from '@stream/contracts';
import { classifyFailure, type App, type Classifier, type RetryOptions } from '@stream/core';
import { MarketDataTimeoutError } from './price-source.js';
import type { PriceLookup } from './prices.js';
import { executionReport } from './report.js';

export interface ExecutionQualityAgentOptions {
  /** Orders in flight at once; their lookups are batched. Default 64. */
  readonly concurrency?: number;
  /** Default: 5 attempts for an order's own failures, 200 ms doubling to 5 s. */
  readonly retry?: RetryOptions;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, backoff: { initialMs: 200, maxMs: 5000 } };

/**
 * A query that timed out, and whatever the default classification calls a dependency's fault (connection
 * refused, 5xx, 429), is InfluxDB's: named `influxdb`, so its ping (the `/readyz` check) decides whether an
 * order that keeps failing is the order's fault. InfluxDB 1.8 answers a query it cannot run with 500.
 */
export const classifyExecutionQuality: Classifier = (error) =>
  error instanceof MarketDataTimeoutError || classifyFailure(error).kind === 'dependency' ? { kind: 'dependency', dependency: 'influxdb' } : undefined;

/**
 * For each order: look up the market price of its symbol at its execution time (batched with the other
 * orders in flight) and send its report to `output`, keyed by order id.
 *
 * Exactly-once: the report and the order's offset commit in one Kafka transaction, so each order has one
 * report for read-committed consumers, whatever retries or restarts happened. InfluxDB down, slow, or
 * answering 5xx/429 is waited out (the agent starts no new orders until it answers, nothing is
 * dead-lettered); an order that keeps failing while InfluxDB answers (its ping passes, other orders get
 * their quotes) goes to `<input>.dlq` after 5 attempts, as do orders that do not decode or fit the contract.
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
    {
      name: 'execution-quality',
      concurrency: options.concurrency ?? 64,
      exactlyOnce: true,
      retry: options.retry ?? DEFAULT_RETRY,
      classify: classifyExecutionQuality,
    },
    async (order, ctx) => {
      const quote = await prices.lookup(order.symbol, order.executedAt, ctx.signal);
      await ctx.send(output, { key: order.id, value: executionReport(order, quote) });
    },
  );
}
