import { defineTopic } from '@stream/core';
import { z } from 'zod';
import { isoDate } from './dates.js';

/** An executed order. Keyed by order id. */
export const Order = z.object({
  id: z.string().min(1).max(200),
  userId: z.string().min(1).max(200),
  symbol: z.string().min(1).max(32),
  side: z.enum(['buy', 'sell']),
  quantity: z.number().positive().finite(),
  price: z.number().positive().finite(),
  executedAt: isoDate(),
});
export type Order = z.output<typeof Order>;

/** `orders`: executed orders keyed by order id. */
export const orders = defineTopic({ name: 'orders', key: z.string().min(1), value: Order, partitions: 6 });

/** How an order's price compares with the market at execution time. Keyed by order id. */
export const ExecutionQuality = z.object({
  orderId: z.string().min(1),
  symbol: z.string().min(1),
  side: z.enum(['buy', 'sell']),
  quantity: z.number().positive(),
  executedPrice: z.number().positive(),
  /** Last market price at or before execution, within the look-back window; null without market data. */
  marketPrice: z.number().positive().nullable(),
  marketTime: isoDate().nullable(),
  /** Positive = worse for the customer (bought above or sold below the market). Null without market data. */
  slippageBps: z.number().finite().nullable(),
  status: z.enum(['ok', 'no_market_data']),
});
export type ExecutionQuality = z.output<typeof ExecutionQuality>;

/** `execution_quality`: one report per order, keyed by order id. */
export const executionQuality = defineTopic({ name: 'execution_quality', key: z.string().min(1), value: ExecutionQuality, partitions: 6 });
