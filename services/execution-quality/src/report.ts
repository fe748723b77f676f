import type { ExecutionQuality, Order } from '@stream/contracts';
import type { MarketQuote } from './prices.js';

/**
 * Slippage in basis points, positive when the customer did worse than the market: a buy above the market
 * price or a sell below it.
 *   buy:  (executed - market) / market × 10,000
 *   sell: (market - executed) / market × 10,000
 */
export function slippageBps(side: Order['side'], executedPrice: number, marketPrice: number): number {
  const difference = side === 'buy' ? executedPrice - marketPrice : marketPrice - executedPrice;
  return (difference / marketPrice) * 10_000;
}

/**
 * The execution-quality report of an order. Without a usable market price (none within the look-back, or
 * the newest one is not a positive finite number) the status is `no_market_data` and the market fields are null.
 */
export function executionReport(order: Order, quote: MarketQuote | null): ExecutionQuality {
  const base = { orderId: order.id, symbol: order.symbol, side: order.side, quantity: order.quantity, executedPrice: order.price };
  if (!quote || !Number.isFinite(quote.price) || quote.price <= 0) {
    return { ...base, marketPrice: null, marketTime: null, slippageBps: null, status: 'no_market_data' };
  }
  return {
    ...base,
    marketPrice: quote.price,
    marketTime: quote.time,
    slippageBps: slippageBps(order.side, order.price, quote.price),
    status: 'ok',
  };
}
