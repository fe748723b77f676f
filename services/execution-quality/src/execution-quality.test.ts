import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { DATE_WINDOW, executionQuality, orders, type ExecutionQuality, type Order } from '@stream/contracts';
import { createTestApp, type TestHarness } from '@stream/core/testing';
import { createInfluxBucket, dropInfluxBucket, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { executionQualityAgent } from './agent.js';
import { InfluxPriceSource, type PricePoint, type PriceSource } from './price-source.js';
import { MarketPrices, lookupEach, type PriceLookup } from './prices.js';
import { executionReport } from './report.js';
import { seededRandom } from './seed-market-data.js';
import { dateToNanos } from './time.js';

const { influxUrl, influxToken, influxOrg } = localServers();
const LOOKBACK_MS = 5 * 60_000;
const T = new Date('2026-01-01T10:00:00Z');
const at = (offsetMs: number) => new Date(T.getTime() + offsetMs);
const fastRetry = { attempts: Infinity, backoff: { initialMs: 5, maxMs: 50 } };

let database: string;
let bucket: string;
let h: TestHarness | undefined;

function source(lookbackMs = LOOKBACK_MS): InfluxPriceSource {
  return new InfluxPriceSource({ url: influxUrl, token: influxToken, org: influxOrg, bucket, lookbackMs, timeoutMs: 5000 });
}

/** Writes `[symbol, time (Date, or bigint ns), price]` points with nanosecond precision. */
async function write(points: ReadonlyArray<readonly [string, Date | bigint, number]>): Promise<void> {
  const writer = new InfluxDB({ url: influxUrl, token: influxToken }).getWriteApi(influxOrg, bucket, 'ns', { batchSize: 5000, flushInterval: 0 });
  for (const [symbol, time, price] of points) {
    writer.writePoint(
      new Point('marketdata')
        .tag('symbol', symbol)
        .floatField('price', price)
        .timestamp(typeof time === 'bigint' ? time.toString() : time),
    );
  }
  await writer.close();
}

function order(id: string, symbol: string, side: 'buy' | 'sell', price: number, executedAt: Date, quantity = 10): Order {
  return { id, userId: 'u-1', symbol, side, quantity, price, executedAt };
}

async function start(prices: PriceLookup, concurrency = 64): Promise<TestHarness> {
  h = await createTestApp({ id: uniqueName('execution-quality'), outputs: [executionQuality] }, (app) =>
    executionQualityAgent(app, orders, executionQuality, prices, { concurrency, retry: fastRetry }),
  );
  return h;
}

async function run(prices: PriceLookup, list: readonly Order[], timeoutMs = 20_000): Promise<Map<string, ExecutionQuality>> {
  const harness = await start(prices);
  // All at once, like a backlog a consumer finds (harness.send would send one after the other).
  await Promise.all(list.map((value) => harness.app.send(orders, { key: value.id, value })));
  await harness.settle(timeoutMs);
  const produced = await harness.produced(executionQuality);
  const byId = new Map(produced.map((r) => [r.key, r.value]));
  expect(produced).toHaveLength(byId.size);
  return byId;
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

describe('execution-quality on the memory transport with the real InfluxDB', () => {
  beforeAll(() => requireServers('influxdb'));
  beforeEach(async () => {
    database = uniqueName('eq').replace(/-/g, '_');
    bucket = await createInfluxBucket(database);
  });
  afterEach(async () => {
    await h?.stop();
    h = undefined;
    await dropInfluxBucket(database);
  });

  it('reports slippage with the right sign for buys and sells, against the newest price', async () => {
    await write([
      ['ACME', at(-120_000), 90],
      ['ACME', at(-1000), 100],
      ['ACME', at(1000), 200],
      ['INIT', at(-5000), 40],
    ]);
    const reports = await run(new MarketPrices(source()), [
      order('buy-worse', 'ACME', 'buy', 100.5, T),
      order('buy-better', 'ACME', 'buy', 99.5, T),
      order('sell-worse', 'ACME', 'sell', 99.5, T),
      order('sell-better', 'ACME', 'sell', 100.5, T, 3),
      order('at-market', 'INIT', 'sell', 40, T),
    ]);
    expect(reports.get('buy-worse')).toEqual({
      orderId: 'buy-worse',
      symbol: 'ACME',
      side: 'buy',
      quantity: 10,
      executedPrice: 100.5,
      marketPrice: 100,
      marketTime: at(-1000),
      slippageBps: 50,
      status: 'ok',
    });
    expect(reports.get('buy-better')?.slippageBps).toBeCloseTo(-50, 9);
    expect(reports.get('sell-worse')?.slippageBps).toBeCloseTo(50, 9);
    expect(reports.get('sell-better')).toMatchObject({ quantity: 3, marketPrice: 100, status: 'ok' });
    expect(reports.get('sell-better')?.slippageBps).toBeCloseTo(-50, 9);
    expect(reports.get('at-market')).toMatchObject({ marketPrice: 40, slippageBps: 0, status: 'ok' });
    expect(h!.deadLetters(orders)).toEqual([]);
  });

  it('reports no_market_data for an unknown symbol or one without a price in the look-back', async () => {
    await write([
      ['LATE', at(10), 10],
      ['STALE', at(-LOOKBACK_MS - 60_000), 10],
    ]);
    const reports = await run(new MarketPrices(source()), [
      order('unknown', 'NOPE', 'buy', 10, T),
      order('late', 'LATE', 'sell', 10, T),
      order('stale', 'STALE', 'buy', 10, T),
    ]);
    for (const id of ['unknown', 'late', 'stale']) {
      expect(reports.get(id)).toMatchObject({ orderId: id, status: 'no_market_data', marketPrice: null, marketTime: null, slippageBps: null });
    }
  });

  it('counts a price exactly at the execution or exactly one look-back before it, and nothing outside', async () => {
    const ns = dateToNanos(T);
    await write([
      ['EXACT', at(-60_000), 1],
      ['EXACT', T, 2],
      ['AFTER_1MS', at(-60_000), 3],
      ['AFTER_1MS', at(1), 4],
      ['AFTER_1NS', at(-60_000), 5],
      ['AFTER_1NS', ns + 1n, 6],
      ['BEFORE_1NS', ns - 1n, 7],
      ['ONLY_AFTER', at(1), 8],
      ['OLDEST', at(-LOOKBACK_MS), 9],
      ['TOO_OLD', at(-LOOKBACK_MS - 1), 10],
    ]);
    const symbols = ['EXACT', 'AFTER_1MS', 'AFTER_1NS', 'BEFORE_1NS', 'ONLY_AFTER', 'OLDEST', 'TOO_OLD'];
    const expected = { EXACT: 2, AFTER_1MS: 3, AFTER_1NS: 5, BEFORE_1NS: 7, ONLY_AFTER: null, OLDEST: 9, TOO_OLD: null };
    // Through the agent (batched: one order per symbol, all in one batch)...
    const reports = await run(
      new MarketPrices(source()),
      symbols.map((s) => order(s, s, 'buy', 1, T)),
    );
    expect(Object.fromEntries(symbols.map((s) => [s, reports.get(s)?.marketPrice]))).toEqual(expected);
    // ...and through the per-order query.
    const each = await Promise.all(symbols.map(async (s) => [s, (await lookupEach(source(), s, T))?.price ?? null] as const));
    expect(Object.fromEntries(each)).toEqual(expected);
    // Batched with other executions of the same symbol around it: the window query obeys the same bounds.
    const windowed = await run(
      new MarketPrices(source()),
      symbols.flatMap((s) => [order(`${s}-early`, s, 'buy', 1, at(-30_000)), order(s, s, 'buy', 1, T), order(`${s}-later`, s, 'buy', 1, at(30_000))]),
    );
    expect(Object.fromEntries(symbols.map((s) => [s, windowed.get(s)?.marketPrice]))).toEqual(expected);
    expect(windowed.get('ONLY_AFTER-later')?.marketPrice).toBe(8);
  });

  it('treats an injection-like symbol as a plain unknown symbol, and finds odd symbols exactly', async () => {
    const odd = 'we"ird\\sym ${x} |> drop()';
    await write([
      ['AAPL', at(-1000), 150],
      [odd, at(-1000), 7],
    ]);
    const injections = ['AAPL")|>drop(columns:["_value"])', 'x" or r.symbol != "', 'AAPL" or true or "', 'AAPL\\', '${"AAPL"}'];
    const reports = await run(new MarketPrices(source()), [
      ...injections.map((symbol, i) => order(`inject-${i}`, symbol, 'buy', 150, T)),
      order('aapl', 'AAPL', 'buy', 151.5, T),
      order('odd', odd, 'sell', 7, T),
    ]);
    injections.forEach((symbol, i) => expect(reports.get(`inject-${i}`)).toMatchObject({ symbol, status: 'no_market_data', marketPrice: null }));
    expect(reports.get('aapl')).toMatchObject({ status: 'ok', marketPrice: 150, slippageBps: 100 });
    expect(reports.get('odd')).toMatchObject({ status: 'ok', symbol: odd, marketPrice: 7 });
    expect(h!.deadLetters(orders)).toEqual([]);

    // The example is longer than the contract allows a symbol (32), so as an order it is dead-lettered
    // before any query; asked directly, both query paths treat it as a symbol without market data.
    const example = 'AAPL") |> drop(columns: ["_value"]';
    expect(await new MarketPrices(source()).lookup(example, T)).toBeNull();
    expect(await lookupEach(source(), example, T)).toBeNull();
    expect((await lookupEach(source(), 'AAPL', T))?.price).toBe(150);
    await h!.send(orders, { key: 'long', value: order('long', 'AAPL', 'buy', 1, T) });
    await h!.sendRaw('orders', { key: 'example', value: JSON.stringify(order('example', example, 'buy', 1, T)) });
    await h!.settle();
    expect(h!.deadLetters(orders).map((d) => [d.key, d.errorClass])).toEqual([['example', 'SchemaValidationError']]);
  });

  it('dead-letters an order from year 0000 or past 2262 once, and reports orders at both ends of the window (#16 finding 4)', async () => {
    await write([['ACME', at(-1000), 100]]);
    const harness = await start(new MarketPrices(source()));
    const raw = (id: string, executedAt: string) => ({ key: id, value: JSON.stringify({ ...order(id, 'ACME', 'buy', 100, T), executedAt }) });
    await harness.sendRaw('orders', raw('year-0', '0000-01-01T00:00:00Z'));
    await harness.sendRaw('orders', raw('year-9999', '9999-12-31T23:59:59Z'));
    await harness.send(
      orders,
      ...[order('first', 'ACME', 'buy', 100, DATE_WINDOW.min), order('last', 'ACME', 'buy', 100, DATE_WINDOW.max), order('now', 'ACME', 'buy', 101, T)].map(
        (value) => ({ key: value.id, value }),
      ),
    );
    await harness.settle(20_000);
    expect(harness.deadLetters(orders).map((d) => [d.key, d.errorClass])).toEqual([
      ['year-0', 'SchemaValidationError'],
      ['year-9999', 'SchemaValidationError'],
    ]);
    const reports = new Map((await harness.produced(executionQuality)).map((r) => [r.key, r.value]));
    // The window's ends reach InfluxDB as valid Flux ranges (no 500, no retry loop): no market data there.
    expect(reports.get('first')).toMatchObject({ status: 'no_market_data', marketPrice: null });
    expect(reports.get('last')).toMatchObject({ status: 'no_market_data', marketPrice: null });
    expect(reports.get('now')).toMatchObject({ status: 'ok', marketPrice: 100, slippageBps: 100 });
    expect(reports.size).toBe(3);
  });

  it('batched lookups equal per-order queries on random data, with fewer queries', async () => {
    const random = seededRandom(20260101);
    const symbols = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE'];
    const base = dateToNanos(T);
    const points: [string, bigint, number][] = [];
    for (const symbol of symbols) {
      // Irregular ticks over 20 minutes, some off the millisecond grid, with quiet gaps longer than the look-back.
      let t = base - 600_000_000_000n;
      while (t < base + 600_000_000_000n) {
        const gap = random() < 0.05 ? 400_000 : Math.floor(random() * 8000);
        t += BigInt(gap) * 1_000_000n + (random() < 0.3 ? BigInt(Math.floor(random() * 999_999)) : 0n);
        points.push([symbol, t, Math.round((50 + random() * 50) * 100) / 100]);
      }
    }
    await write(points);
    const tickTimes = points.map(([, t]) => Number(t / 1_000_000n));
    const list = Array.from({ length: 300 }, (_, i) => {
      const symbol = random() < 0.05 ? 'ZZZ' : symbols[Math.floor(random() * symbols.length)]!;
      // Mostly random instants; some exactly on a tick's millisecond, some 1 ms after one.
      const r = random();
      const tick = tickTimes[Math.floor(random() * tickTimes.length)]!;
      const executedAt = r < 0.15 ? new Date(tick) : r < 0.25 ? new Date(tick + 1) : at(Math.floor((random() * 2 - 1) * 660_000));
      return order(`o-${i}`, symbol, random() < 0.5 ? 'buy' : 'sell', Math.round((50 + random() * 50) * 100) / 100, executedAt);
    });
    // Batches span up to 15 minutes of the 22: windows with gaps longer than the look-back, executions
    // before the first tick and after the last, batches split by span.
    const prices = new MarketPrices(source());
    let started = Date.now();
    const reports = await run(prices, list, 60_000);
    const batchedMs = Date.now() - started;
    started = Date.now();
    const reference = source();
    const expected = await mapLimit(list, 8, async (o) => executionReport(o, await lookupEach(reference, o.symbol, o.executedAt)));
    console.log(
      `equivalence: ${list.length} orders, ${prices.queries} batched queries in ${batchedMs} ms, ${list.length} per-order queries in ${Date.now() - started} ms`,
    );
    expect(list.map((o) => reports.get(o.id))).toEqual(expected);
    const statuses = expected.map((r) => r.status);
    expect(statuses.filter((s) => s === 'ok').length).toBeGreaterThan(150);
    expect(statuses.filter((s) => s === 'no_market_data').length).toBeGreaterThan(10);
    // How many orders share a query depends on timing; the deterministic count is the test below.
    expect(prices.queries).toBeLessThan(list.length / 2);
  });

  it('answers lookups made together with one query per symbol', async () => {
    await write([
      ['ACME', at(-1000), 100],
      ['INIT', at(-1000), 40],
    ]);
    const prices = new MarketPrices(source());
    const symbols = ['ACME', 'INIT', 'NOPE'];
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => prices.lookup(symbols[i % 3]!, at(i * 1000))));
    expect(prices.queries).toBe(3);
    expect(answers.filter((a) => a?.price === 100)).toHaveLength(67);
    expect(answers.filter((a) => a?.price === 40)).toHaveLength(67);
    expect(answers.filter((a) => a === null)).toHaveLength(66);
  });

  it('sends malformed orders to the dead-letter topic and keeps going', async () => {
    await write([['ACME', at(-1000), 100]]);
    const harness = await start(new MarketPrices(source()));
    await harness.sendRaw('orders', { key: 'bad-json', value: '{"id": "bad-json", "symbol": ' });
    await harness.sendRaw('orders', { key: 'bad-qty', value: JSON.stringify({ ...order('bad-qty', 'ACME', 'buy', 1, T), quantity: -5 }) });
    await harness.sendRaw('orders', { key: 'no-time', value: JSON.stringify({ ...order('no-time', 'ACME', 'buy', 1, T), executedAt: undefined }) });
    await harness.sendRaw('orders', { key: 'bad-side', value: JSON.stringify({ ...order('bad-side', 'ACME', 'buy', 1, T), side: 'hold' }) });
    await harness.send(orders, { key: 'good', value: order('good', 'ACME', 'buy', 101, T) });
    await harness.settle();
    const dead = new Map(harness.deadLetters(orders).map((d) => [d.key, d]));
    expect([...dead.keys()].sort()).toEqual(['bad-json', 'bad-qty', 'bad-side', 'no-time']);
    expect(dead.get('bad-json')?.errorClass).toBe('DecodeError');
    for (const key of ['bad-qty', 'no-time', 'bad-side']) expect(dead.get(key)?.errorClass).toBe('SchemaValidationError');
    expect(dead.get('bad-qty')?.errorMessage).toMatch(/value\.quantity/);
    expect(dead.get('no-time')?.errorMessage).toMatch(/value\.executedAt/);
    const produced = await harness.produced(executionQuality);
    expect(produced.map((r) => [r.key, r.value.status, r.value.slippageBps])).toEqual([['good', 'ok', 100]]);
  });

  it('retries a failing InfluxDB with backoff: no report until the lookup works, then exactly one', async () => {
    await write([['ACME', at(-1000), 100]]);
    const real = source();
    let failures = 0;
    const flaky: PriceSource = {
      lookbackNs: real.lookbackNs,
      last: (...args) => real.last(...args),
      window: async (...args): Promise<PricePoint[]> => {
        if (failures < 5) {
          failures += 1;
          throw new Error('connect ECONNREFUSED 127.0.0.1:8086');
        }
        return real.window(...args);
      },
    };
    const reports = await run(new MarketPrices(flaky), [order('o-1', 'ACME', 'buy', 101, T), order('o-2', 'ACME', 'sell', 99, T)]);
    expect(failures).toBe(5);
    expect([...reports.keys()].sort()).toEqual(['o-1', 'o-2']);
    expect(reports.get('o-1')).toMatchObject({ status: 'ok', slippageBps: 100 });
    expect(h!.deadLetters(orders)).toEqual([]);
  });

  it('retries while InfluxDB is unreachable, and commits nothing past the waiting order', async () => {
    const unreachable = new InfluxPriceSource({ url: 'http://127.0.0.1:1', token: 'x', org: 'x', bucket, lookbackMs: LOOKBACK_MS, timeoutMs: 1000 });
    const harness = await start(new MarketPrices(unreachable));
    await harness.send(orders, { key: 'o-1', value: order('o-1', 'ACME', 'buy', 1, T) });
    await new Promise((r) => setTimeout(r, 300));
    expect(await harness.produced(executionQuality)).toEqual([]);
    expect(harness.deadLetters(orders)).toEqual([]);
    expect(harness.committed(orders).get(0) ?? 0).toBe(0);
    expect(harness.app.health().agents[0]!.inFlight).toBe(1);
  });
});
