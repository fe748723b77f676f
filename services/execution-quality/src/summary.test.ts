import { executionQuality, executionQualitySummary, orders, slippageBySymbol, type Order } from '@stream/contracts';
import { createTestApp } from '@stream/core/testing';
import { uniqueName } from '@stream/local-stack';
import { describe, expect, it } from 'vitest';
import { executionQualityAgent } from './agent.js';
import type { PriceLookup } from './prices.js';
import { addSlippage, slippageSummaryAgent, summaryOf } from './summary.js';

const T = Date.UTC(2026, 0, 1, 10);
const MINUTE = 60_000;

/** Market price 100 for every symbol at every time: an order's price p gives ±(p − 100) × 100 bps. */
const quote = { price: 100, time: new Date(T), timeNs: BigInt(T) * 1_000_000n };
const flat: PriceLookup = {
  lookup: async () => quote,
  lookupAll: async (requests) => requests.map(() => quote),
};

function order(id: string, symbol: string, price: number, offsetMs: number, side: Order['side'] = 'buy'): Order {
  return { id, userId: 'u-1', symbol, side, quantity: 1, price, executedAt: new Date(T + offsetMs) };
}

describe('the slippage summary', () => {
  it('adds slippage and summarises a closed window as count, mean and worst', () => {
    const window = [12, -4, 30].reduce<ReturnType<typeof addSlippage> | undefined>((w, bps) => addSlippage(w, bps), undefined);
    expect(window).toEqual({ count: 3, sumBps: 38, worstBps: 30 });
    expect(summaryOf({ key: 'ACME', window: { start: T, end: T + MINUTE }, value: window! })).toEqual({
      symbol: 'ACME',
      windowStart: new Date(T),
      windowEnd: new Date(T + MINUTE),
      count: 3,
      meanBps: 38 / 3,
      worstBps: 30,
    });
  });

  it('re-keys each report with slippage by symbol and emits one summary per symbol and closed minute; a late order is dead-lettered from the summary only', async () => {
    const h = await createTestApp({ id: uniqueName('execution-quality'), outputs: [executionQuality, slippageBySymbol] }, (app) => {
      executionQualityAgent(app, orders, executionQuality, flat, { samples: slippageBySymbol });
      slippageSummaryAgent(app, slippageBySymbol, executionQualitySummary, { windowMs: MINUTE, graceMs: 10_000 });
    });
    const list = [
      order('o-1', 'ACME', 100.1, 1_000), // +10 bps
      order('o-2', 'ACME', 100.3, 20_000), // +30 bps
      order('o-3', 'ACME', 99.9, 59_000), // −10 bps
      order('o-4', 'INIT', 100.2, 30_000, 'sell'), // −20 bps
      order('o-5', 'ACME', 100, MINUTE + 15_000), // closes ACME's first minute on its partition (end + 10 s grace)
      order('o-6', 'INIT', 100, MINUTE + 15_000),
      order('o-7', 'ACME', 100.5, 2_000), // late: ACME's first minute has closed
    ];
    // One at a time: an order's stream-time effect depends on what its partition saw before it.
    for (const o of list) {
      await h.send(orders, { key: o.id, value: o });
      await h.settle(10_000);
    }
    const reports = await h.produced(executionQuality);
    expect(reports).toHaveLength(list.length);
    const summaries = (await h.produced(executionQualitySummary)).map((r) => r.value).sort((a, b) => a.symbol.localeCompare(b.symbol));
    expect(summaries).toHaveLength(2);
    const [acme, init] = summaries;
    expect(acme).toMatchObject({ symbol: 'ACME', windowStart: new Date(T), windowEnd: new Date(T + MINUTE), count: 3 });
    expect(acme!.meanBps).toBeCloseTo(10, 6);
    expect(acme!.worstBps).toBeCloseTo(30, 6);
    expect(init).toMatchObject({ symbol: 'INIT', count: 1 });
    expect(init!.meanBps).toBeCloseTo(-20, 6);
    expect(init!.worstBps).toBeCloseTo(-20, 6);
    const late = h.deadLetters(slippageBySymbol);
    expect(late.map((l) => [l.key, l.errorClass])).toEqual([['ACME', 'LateRecordError']]);
    expect(h.deadLetters(orders)).toEqual([]);
    await h.stop();
  });
});
