import type { executionQuality, orders, slippageBySymbol } from '@stream/contracts';
import { classifyFailure, toError, type App, type BatchOptions, type Classifier, type RetryOptions } from '@stream/core';
import { MarketDataTimeoutError } from './price-source.js';
import type { PriceLookup } from './prices.js';
import { executionReport } from './report.js';
import { slippageSample } from './summary.js';

export interface ExecutionQualityAgentOptions {
  /** Orders in flight at once across partitions (in batches). Default: what each partition may hold (the app's `buffer`). */
  readonly concurrency?: number;
  /** Orders of one partition looked up together. Default 500 orders, waiting at most 20 ms for them. */
  readonly batch?: BatchOptions;
  /** Default: 5 attempts for an order's own failures, 200 ms doubling to 5 s. */
  readonly retry?: RetryOptions;
  /**
   * Where each report with slippage is also sent, keyed by symbol, in the same transaction (the input of
   * {@link slippageSummaryAgent}). Default: nowhere.
   */
  readonly samples?: typeof slippageBySymbol;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, backoff: { initialMs: 200, maxMs: 5000 } };

/**
 * The app settings the service runs with. Its cost is per batch (one Flux query per symbol and partition
 * batch), not per order, so its fetches should fill a batch of 500 orders at once: 512 KiB per partition
 * rather than the framework's lean 128 KiB default, whose fetches of about 417 orders cut the batches and took
 * 380 instead of 234 queries for 5,000 orders (`pnpm bench --scenario service-execution-quality`).
 */
export const EXECUTION_APP_OPTIONS = { maxBytesPerPartition: 512 * 1024 } as const;

/**
 * A query that timed out, and whatever the default classification calls a dependency's fault (connection
 * refused, 5xx, 429), is InfluxDB's: named `influxdb`, so its ping (the `/readyz` check) decides whether an
 * order that keeps failing is the order's fault. InfluxDB 1.8 answers a query it cannot run with 500.
 */
export const classifyExecutionQuality: Classifier = (error) =>
  error instanceof MarketDataTimeoutError || classifyFailure(error).kind === 'dependency' ? { kind: 'dependency', dependency: 'influxdb' } : undefined;

export const DEFAULT_BATCH: BatchOptions = { maxRecords: 500, maxWaitMs: 20 };

/**
 * For each batch of orders of a partition: look up the market prices of their symbols at their execution
 * times together (one Flux query per symbol and span of execution times, see {@link PriceLookup.lookupAll})
 * and send each order's report to `output`, keyed by order id. Partitions run side by side. An order whose
 * query failed fails alone (the others of its batch are reported) and is retried on its own.
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
      batch: options.batch ?? DEFAULT_BATCH,
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      exactlyOnce: true,
      retry: options.retry ?? DEFAULT_RETRY,
      classify: classifyExecutionQuality,
    },
    async (records, batch) => {
      const quotes = await prices.lookupAll(
        records.map(({ value }) => ({ symbol: value.symbol, executedAt: value.executedAt })),
        batch.signal,
      );
      return Promise.all(
        records.map(async ({ value: order, ctx }, i) => {
          const quote = quotes[i];
          if (quote instanceof Error) return quote;
          try {
            const report = executionReport(order, quote ?? null);
            const sample = options.samples && slippageSample(order, report);
            await ctx.send(output, { key: order.id, value: report });
            if (sample && options.samples) await ctx.send(options.samples, { key: sample.symbol, value: sample });
            return undefined;
          } catch (error) {
            return toError(error);
          }
        }),
      );
    },
  );
}
