import { generateMarketData, type MarketDataSpec } from '@stream/execution-quality';
import { SYMBOLS } from './producer.js';

/** The demo's market: one price per second per symbol for the hour before `end`. */
export interface MarketWindow {
  readonly spec: MarketDataSpec;
  readonly start: Date;
  readonly end: Date;
  /** The price written for `symbol` at the second of `at` (clamped to the window). */
  priceAt(symbol: string, at: Date): number;
}

export function marketWindow(end: Date = new Date()): MarketWindow {
  const stepMs = 1000;
  const points = 3600;
  const start = new Date(end.getTime() - points * stepMs);
  const spec: MarketDataSpec = { symbols: SYMBOLS, points, start, stepMs };
  const series = new Map<string, number[]>(SYMBOLS.map((s) => [s, []]));
  for (const point of generateMarketData(spec)) series.get(point.symbol)!.push(point.price);
  return {
    spec,
    start,
    end,
    priceAt(symbol, at) {
      const prices = series.get(symbol);
      if (!prices) throw new Error(`no market data for symbol ${symbol}`);
      return prices[Math.min(prices.length - 1, Math.max(0, Math.floor((at.getTime() - start.getTime()) / stepMs)))]!;
    },
  };
}
