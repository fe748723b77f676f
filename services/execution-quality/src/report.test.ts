import type { Order } from '@stream/contracts';
import { ExecutionQuality } from '@stream/contracts';
import { describe, expect, it } from 'vitest';
import { executionReport, slippageBps } from './report.js';

const order = (side: 'buy' | 'sell', price: number): Order => ({
  id: 'o-1',
  userId: 'u-1',
  symbol: 'ACME',
  side,
  quantity: 10,
  price,
  executedAt: new Date('2026-01-01T10:00:00Z'),
});
const quote = (price: number) => ({ price, time: new Date('2026-01-01T09:59:59Z'), timeNs: 0n });

describe('slippage', () => {
  it('is positive when the customer did worse than the market', () => {
    expect(slippageBps('buy', 100.5, 100)).toBeCloseTo(50, 9);
    expect(slippageBps('sell', 99.5, 100)).toBeCloseTo(50, 9);
  });
  it('is negative when the customer did better', () => {
    expect(slippageBps('buy', 99.5, 100)).toBeCloseTo(-50, 9);
    expect(slippageBps('sell', 100.5, 100)).toBeCloseTo(-50, 9);
  });
  it('is zero at the market price', () => {
    expect(slippageBps('buy', 100, 100)).toBe(0);
    expect(slippageBps('sell', 100, 100)).toBe(0);
  });
});

describe('executionReport', () => {
  it('reports the market price, its time and the slippage', () => {
    const report = executionReport(order('buy', 101), quote(100));
    expect(report).toEqual({
      orderId: 'o-1',
      symbol: 'ACME',
      side: 'buy',
      quantity: 10,
      executedPrice: 101,
      marketPrice: 100,
      marketTime: new Date('2026-01-01T09:59:59Z'),
      slippageBps: 100,
      status: 'ok',
    });
    expect(ExecutionQuality.parse(report)).toEqual(report);
  });

  it('reports no_market_data with null market fields without a usable price', () => {
    for (const q of [null, quote(0), quote(-1), quote(Number.NaN), quote(Number.POSITIVE_INFINITY)]) {
      const report = executionReport(order('sell', 50), q);
      expect(report).toMatchObject({ status: 'no_market_data', marketPrice: null, marketTime: null, slippageBps: null, executedPrice: 50 });
      expect(ExecutionQuality.safeParse(report).success).toBe(true);
    }
  });
});
