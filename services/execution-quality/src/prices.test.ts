import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PricePoint, PriceSource } from './price-source.js';
import { MarketPrices, lookupEach, planQueries, quoteAt } from './prices.js';

/** The obvious answer: scan every point. */
function naive(points: readonly PricePoint[], atNs: bigint, lookbackNs: bigint): { price: number; timeNs: bigint } | null {
  let best: PricePoint | undefined;
  for (const p of points) {
    if (p.timeNs > atNs || p.timeNs < atNs - lookbackNs) continue;
    if (!best || p.timeNs > best.timeNs || (p.timeNs === best.timeNs && p.price > best.price)) best = p;
  }
  return best ? { price: best.price, timeNs: best.timeNs } : null;
}

/** An in-memory source answering exactly as the Flux queries do: several series per symbol allowed. */
class ArraySource implements PriceSource {
  calls = 0;
  constructor(
    readonly data: ReadonlyMap<string, ReadonlyArray<PricePoint & { readonly series: number }>>,
    readonly lookbackNs: bigint,
  ) {}
  #lastPerSeries(symbol: string, from: bigint, to: bigint): PricePoint[] {
    const newest = new Map<number, PricePoint>();
    for (const p of this.data.get(symbol) ?? []) {
      if (p.timeNs < from || p.timeNs > to) continue;
      const seen = newest.get(p.series);
      if (!seen || p.timeNs > seen.timeNs) newest.set(p.series, p);
    }
    return [...newest.values()].map(({ timeNs, price }) => ({ timeNs, price }));
  }
  async last(symbol: string, atNs: bigint): Promise<PricePoint[]> {
    this.calls += 1;
    return this.#lastPerSeries(symbol, atNs - this.lookbackNs, atNs);
  }
  async window(symbol: string, firstNs: bigint, lastNs: bigint): Promise<PricePoint[]> {
    this.calls += 1;
    const after = (this.data.get(symbol) ?? []).filter((p) => p.timeNs > firstNs && p.timeNs <= lastNs);
    return [...this.#lastPerSeries(symbol, firstNs - this.lookbackNs, firstNs), ...after.map(({ timeNs, price }) => ({ timeNs, price }))];
  }
}

const time = fc.bigInt({ min: 0n, max: 2_000n });
const point = fc.record({ timeNs: time, price: fc.integer({ min: 1, max: 20 }), series: fc.integer({ min: 0, max: 2 }) });

describe('quoteAt', () => {
  it('finds the newest point in [t - lookback, t] like a full scan does', () => {
    fc.assert(
      fc.property(fc.array(point, { maxLength: 40 }), time, fc.bigInt({ min: 0n, max: 500n }), (points, at, lookback) => {
        const sorted = [...points].sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : a.price - b.price));
        const quote = quoteAt(sorted, at, lookback);
        expect(quote && { price: quote.price, timeNs: quote.timeNs }).toEqual(naive(points, at, lookback));
      }),
    );
  });
});

describe('planQueries', () => {
  it('groups by symbol, sorts by time and splits spans wider than the limit', () => {
    const items = [
      { symbol: 'B', atNs: 5n },
      { symbol: 'A', atNs: 30n },
      { symbol: 'A', atNs: 10n },
      { symbol: 'A', atNs: 20n },
      { symbol: 'A', atNs: 41n },
      { symbol: 'B', atNs: 5n },
    ];
    expect(planQueries(items, 30n).map((g) => g.map((i) => `${i.symbol}${i.atNs}`))).toEqual([['B5', 'B5'], ['A10', 'A20', 'A30'], ['A41']]);
  });
});

describe('MarketPrices (batched) against the per-order model', () => {
  it('gives the same answer for every lookup, with no more queries', async () => {
    const ms = 1_000_000n;
    // Points at whole milliseconds or just off them (sub-millisecond market data); executions at whole ms.
    const tick = fc.record({
      timeNs: fc.tuple(fc.bigInt({ min: 0n, max: 2_000n }), fc.constantFrom(0n, 1n, ms - 1n)).map(([t, sub]) => t * ms + sub),
      price: fc.integer({ min: 1, max: 20 }),
      series: fc.integer({ min: 0, max: 2 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.constantFrom('A', 'B', 'C'), fc.array(tick, { maxLength: 30 })),
        fc.array(fc.record({ symbol: fc.constantFrom('A', 'B', 'C', 'Z'), atMs: fc.integer({ min: 0, max: 2_000 }) }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 3_000 }),
        async (data, lookups, lookbackMs, maxSpanMs) => {
          // A series holds at most one point per instant, as in InfluxDB.
          const unique = new Map(Object.entries(data).map(([s, ps]) => [s, [...new Map(ps.map((p) => [`${p.series}@${p.timeNs}`, p])).values()]]));
          const source = new ArraySource(unique, BigInt(lookbackMs) * ms);
          const batched = new MarketPrices(source, { maxSpanMs });
          const got = await Promise.all(lookups.map((l) => batched.lookup(l.symbol, new Date(l.atMs))));
          const want = await Promise.all(lookups.map((l) => lookupEach(source, l.symbol, new Date(l.atMs))));
          expect(got).toEqual(want);
          expect(batched.queries).toBeLessThanOrEqual(lookups.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fails only the lookups whose query failed', async () => {
    const good = new ArraySource(new Map([['A', [{ timeNs: 1_000_000n, price: 5, series: 0 }]]]), 10_000_000n);
    const source: PriceSource = {
      lookbackNs: good.lookbackNs,
      last: (s, at) => good.last(s, at),
      window: async (symbol, first, last) => {
        if (symbol === 'BAD') throw new Error('influx is unhappy');
        return good.window(symbol, first, last);
      },
    };
    const prices = new MarketPrices(source);
    const [a, bad] = await Promise.allSettled([prices.lookup('A', new Date(2)), prices.lookup('BAD', new Date(2))]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { price: 5 } });
    expect(bad).toMatchObject({ status: 'rejected', reason: { message: 'influx is unhappy' } });
  });

  it('releases an aborted lookup at once, and aborts the query only when every waiting lookup is aborted', async () => {
    const seen: (AbortSignal | undefined)[] = [];
    const source: PriceSource = {
      lookbackNs: 1n,
      last: async () => [],
      window: (_symbol, _first, _last, signal) => {
        seen.push(signal);
        return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('query aborted'))));
      },
    };
    const prices = new MarketPrices(source, { maxWaitMs: 1 });
    const one = new AbortController();
    const two = new AbortController();
    const first = prices.lookup('A', new Date(1), one.signal);
    const second = prices.lookup('A', new Date(2), two.signal);
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toHaveLength(1);
    one.abort(new Error('revoked'));
    await expect(first).rejects.toThrow('revoked');
    expect(seen[0]!.aborted).toBe(false);
    two.abort(new Error('shutdown'));
    await expect(second).rejects.toThrow('shutdown');
    expect(seen[0]!.aborted).toBe(true);
  });
});
