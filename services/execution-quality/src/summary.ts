import type { ExecutionQuality, ExecutionQualitySummary, Order, SlippageSample, executionQualitySummary, slippageBySymbol } from '@stream/contracts';
import type { App, ClosedWindow, WindowedTableOf } from '@stream/core';
import { z } from 'zod';

/** What a symbol's window holds: enough to give count, mean and worst when it closes. */
export const SlippageWindow = z.object({
  count: z.number().int().nonnegative(),
  sumBps: z.number().finite(),
  worstBps: z.number().finite(),
});
export type SlippageWindow = z.output<typeof SlippageWindow>;

/** How the summary cuts time: tumbling windows of execution time and how late an order may still count. */
export interface SummaryOptions {
  /** Width of a window in ms. Default one minute. */
  readonly windowMs?: number;
  /** How long after its end (in execution time seen on the partition) a window still takes orders. Default 30 s. */
  readonly graceMs?: number;
}

export const DEFAULT_SUMMARY: Required<SummaryOptions> = { windowMs: 60_000, graceMs: 30_000 };

/** The re-keyed sample of a report, or undefined for a report without slippage (no market data). */
export function slippageSample(order: Pick<Order, 'id' | 'symbol' | 'executedAt'>, report: ExecutionQuality): SlippageSample | undefined {
  if (report.slippageBps === null) return undefined;
  return { orderId: order.id, symbol: order.symbol, executedAt: order.executedAt, slippageBps: report.slippageBps };
}

/** A window's value with one more order's slippage in it. */
export function addSlippage(window: SlippageWindow | undefined, bps: number): SlippageWindow {
  if (!window || window.count === 0) return { count: 1, sumBps: bps, worstBps: bps };
  return { count: window.count + 1, sumBps: window.sumBps + bps, worstBps: Math.max(window.worstBps, bps) };
}

/** The summary record of a closed window. */
export function summaryOf(closed: ClosedWindow<string, SlippageWindow>): ExecutionQualitySummary {
  const { key, window, value } = closed;
  return {
    symbol: key,
    windowStart: new Date(window.start),
    windowEnd: new Date(window.end),
    count: value.count,
    meanBps: value.sumBps / value.count,
    worstBps: value.worstBps,
  };
}

/** The windowed table behind the summary, for `GET /tables/slippage/<symbol>` and tests. */
export type SlippageTable = WindowedTableOf<z.ZodString, typeof SlippageWindow>;

/**
 * Slippage per symbol in tumbling windows of execution time: for each sample (keyed by symbol), the window
 * of its execution time gains its slippage; once the partition's execution times pass a window's end plus
 * the grace period, its count, mean and worst go to `output`, keyed by symbol. Exactly-once: the table's
 * changelog, the summary and the sample's offset commit in one transaction, so each window is summarised
 * once however often an instance crashes. A sample later than the grace period allows, or stamped more than
 * an hour ahead of this clock, is dead-lettered (`execution_quality_by_symbol.dlq`) with the reason.
 */
export function slippageSummaryAgent(
  app: App,
  input: typeof slippageBySymbol,
  output: typeof executionQualitySummary,
  options: SummaryOptions = {},
): SlippageTable {
  const { windowMs, graceMs } = { ...DEFAULT_SUMMARY, ...options };
  const table = app.windowedTable('slippage', {
    key: z.string(),
    value: SlippageWindow,
    window: { size: windowMs, grace: graceMs },
    onClose: { topic: output, record: (closed) => ({ key: closed.key, value: summaryOf(closed) }) },
  });
  app.agent(input, { name: 'execution-quality-summary', tables: [table], exactlyOnce: true }, async (sample, ctx) => {
    // The record's key (the symbol it was sent under) names the window: it is what partitioned the record.
    ctx.table(table, { time: sample.executedAt }).update(ctx.key, (window) => addSlippage(window, sample.slippageBps));
  });
  return table;
}
