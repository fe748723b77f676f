import { defineTopic } from '@stream/core';
import { z } from 'zod';
import { isoDate } from './dates.js';
import { identifier, LIMITS, price, quantity, text } from './limits.js';

/** An executed order. Keyed by order id. */
export const Order = z.object({
  /** A Redis key (`emailer:order:<id>`) and, percent-encoded, the email API's `Idempotency-Key`. */
  id: identifier(),
  userId: identifier(),
  /** Any text: execution-quality passes it to Flux as a parameter, never as query syntax. */
  symbol: text(LIMITS.symbolLength, 1),
  side: z.enum(['buy', 'sell']),
  quantity: quantity(),
  price: price(),
  executedAt: isoDate(),
});
export type Order = z.output<typeof Order>;

/** `orders`: executed orders keyed by order id. */
export const orders = defineTopic({ name: 'orders', key: identifier(), value: Order, partitions: 6 });

/** How an order's price compares with the market at execution time. Keyed by order id. */
export const ExecutionQuality = z.object({
  orderId: identifier(),
  symbol: text(LIMITS.symbolLength, 1),
  side: z.enum(['buy', 'sell']),
  quantity: quantity(),
  executedPrice: price(),
  /** Last market price at or before execution, within the look-back window; null without market data. */
  marketPrice: z.number().positive().nullable(),
  marketTime: isoDate().nullable(),
  /** Positive = worse for the customer (bought above or sold below the market). Null without market data. */
  slippageBps: z.number().nullable(),
  status: z.enum(['ok', 'no_market_data']),
});
export type ExecutionQuality = z.output<typeof ExecutionQuality>;

/** `execution_quality`: one report per order, keyed by order id. */
export const executionQuality = defineTopic({ name: 'execution_quality', key: identifier(), value: ExecutionQuality, partitions: 6 });

/**
 * One order's slippage, keyed by symbol: execution-quality re-keys its `ok` reports here (in the same
 * transaction as the report) so that one instance holds all of a symbol's orders for its windowed summary.
 */
export const SlippageSample = z.object({
  orderId: identifier(),
  symbol: text(LIMITS.symbolLength, 1),
  executedAt: isoDate(),
  slippageBps: z.number().finite(),
});
export type SlippageSample = z.output<typeof SlippageSample>;

/** `execution_quality_by_symbol`: each reported order's slippage, keyed by symbol. */
export const slippageBySymbol = defineTopic({ name: 'execution_quality_by_symbol', key: text(LIMITS.symbolLength, 1), value: SlippageSample, partitions: 6 });

/** Slippage of one symbol's orders executed within one window of time, final once the window has closed. */
export const ExecutionQualitySummary = z.object({
  symbol: text(LIMITS.symbolLength, 1),
  /** The window `[windowStart, windowEnd)` of execution times. */
  windowStart: isoDate(),
  windowEnd: isoDate(),
  /** Orders with market data executed in the window. */
  count: z.number().int().positive(),
  meanBps: z.number().finite(),
  /** The largest slippage (worst for the customer). */
  worstBps: z.number().finite(),
});
export type ExecutionQualitySummary = z.output<typeof ExecutionQualitySummary>;

/** `execution_quality_summary`: one record per symbol and closed window, keyed by symbol. */
export const executionQualitySummary = defineTopic({
  name: 'execution_quality_summary',
  key: text(LIMITS.symbolLength, 1),
  value: ExecutionQualitySummary,
  partitions: 6,
});
