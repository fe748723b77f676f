import { ExecutionQuality, Order } from '@stream/contracts';
import { createApp, deadLetterTopicName, defineTopic, silentLogger, type App } from '@stream/core';
import {
  createInfluxBucket,
  deleteTopics,
  dropInfluxBucket,
  localServers,
  requireServers,
  testKafka,
  uniqueName,
  withServerStopped,
} from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EXECUTION_APP_OPTIONS, executionQualityAgent } from './agent.js';
import { InfluxPriceSource } from './price-source.js';
import { MarketPrices, lookupEach, type MarketQuote } from './prices.js';
import { executionReport } from './report.js';
import { generateMarketData, seedMarketData, seededRandom } from './seed-market-data.js';
import { dateToNanos } from './time.js';

const { kafkaBrokers, influxUrl, influxToken, influxOrg } = localServers();
/** 50 symbols, each with its own random walk of market data. */
const SYMBOLS = Array.from({ length: 50 }, (_, i) => `SYM${String(i).padStart(2, '0')}`);
/** The bulk test: orders over all {@link SYMBOLS}. */
const BULK_ORDERS = 5000;
/** Diagnostics: `EQ_IT_CONCURRENCY` caps orders in flight (default: the batch agent's own, batches of 500 per partition). */
const CONCURRENCY = process.env.EQ_IT_CONCURRENCY ? { concurrency: Number(process.env.EQ_IT_CONCURRENCY) } : {};
const T0 = new Date('2026-01-01T10:00:00Z');
const POINTS = 600; // one a second for 10 minutes
const LOOKBACK_MS = 60_000;

const topics: string[] = [];
const databases: string[] = [];

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The answer from the seeded data itself: the last point at or before t, within the look-back. */
function modelQuote(seeded: ReadonlyMap<string, readonly number[]>, symbol: string, at: Date): MarketQuote | null {
  const prices = seeded.get(symbol);
  const index = Math.min(Math.floor((at.getTime() - T0.getTime()) / 1000), POINTS - 1);
  if (!prices || index < 0) return null;
  const time = new Date(T0.getTime() + index * 1000);
  if (time.getTime() < at.getTime() - LOOKBACK_MS) return null;
  return { price: prices[index]!, time, timeNs: dateToNanos(time) };
}

/** Topics, market data and an app running the agent with exactly-once on the real servers. */
async function scenario(name: string) {
  const database = uniqueName(`eq_${name}`).replace(/-/g, '_');
  databases.push(database);
  const bucket = await createInfluxBucket(database);
  const target = { url: influxUrl, token: influxToken, org: influxOrg, bucket };
  await seedMarketData(target, { symbols: SYMBOLS, points: POINTS, start: T0, stepMs: 1000, seed: name });
  const seeded = new Map<string, number[]>();
  for (const p of generateMarketData({ symbols: SYMBOLS, points: POINTS, start: T0, stepMs: 1000, seed: name })) {
    const list = seeded.get(p.symbol) ?? [];
    list.push(p.price);
    seeded.set(p.symbol, list);
  }

  const input = defineTopic({ name: uniqueName(`${name}-orders`), key: z.string().min(1), value: Order, partitions: 6 });
  const output = defineTopic({ name: uniqueName(`${name}-execution-quality`), key: z.string().min(1), value: ExecutionQuality, partitions: 6 });
  topics.push(input.name, output.name, deadLetterTopicName(input.name));
  const source = new InfluxPriceSource({ ...target, lookbackMs: LOOKBACK_MS, timeoutMs: 3000 });
  const prices = new MarketPrices(source);
  const app: App = createApp({
    id: uniqueName(`execution-quality-${name}`),
    brokers: kafkaBrokers,
    createTopics: true,
    outputs: [output],
    commitIntervalMs: 200,
    logger: silentLogger(),
    ...EXECUTION_APP_OPTIONS,
  });
  executionQualityAgent(app, input, output, prices, { ...CONCURRENCY, retry: { attempts: Infinity, backoff: { initialMs: 100, maxMs: 1000 } } });
  await app.start();

  // Reports as a read-committed consumer sees them: order id -> every report value received.
  const reports = new Map<string, unknown[]>();
  const reader = testKafka().consumer({ groupId: uniqueName('eq-reader'), readUncommitted: false });
  await reader.connect();
  await reader.subscribe({ topic: output.name, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      const key = message.key!.toString();
      reports.set(key, [...(reports.get(key) ?? []), JSON.parse(message.value!.toString())]);
    },
  });

  const random = seededRandom(`orders:${name}`);
  let next = 0;
  const sent: Order[] = [];
  const producer = testKafka().producer();
  await producer.connect();
  /** Sends `count` random orders: most within the data, some before it or long after it (no market data). */
  async function sendOrders(count: number): Promise<void> {
    const batch = Array.from({ length: count }, () => {
      const offsetMs = Math.floor(-30_000 + random() * (POINTS * 1000 + 120_000));
      const order: Order = {
        id: `${name}-${next++}`,
        userId: `u-${Math.floor(random() * 50)}`,
        symbol: SYMBOLS[Math.floor(random() * SYMBOLS.length)]!,
        side: random() < 0.5 ? 'buy' : 'sell',
        quantity: 1 + Math.floor(random() * 100),
        price: Math.round((10 + random() * 490) * 100) / 100,
        executedAt: new Date(T0.getTime() + offsetMs),
      };
      return order;
    });
    sent.push(...batch);
    // At most 1,000 orders a request: well below the broker's 1 MB limit on a request's record batch.
    for (let i = 0; i < batch.length; i += 1000) {
      await producer.send({ topic: input.name, messages: batch.slice(i, i + 1000).map((o) => ({ key: o.id, value: JSON.stringify(o) })) });
    }
  }

  /** Exactly one report per order sent, equal to the model's; a sample also against per-order Flux queries. */
  async function check(): Promise<void> {
    const ids = new Set(sent.map((o) => o.id));
    const extra = [...reports.keys()].filter((k) => !ids.has(k));
    expect(extra).toEqual([]);
    const counts = sent.map((o) => reports.get(o.id)?.length ?? 0);
    expect(counts.filter((c) => c !== 1)).toEqual([]);
    const expected = sent.map((o) => JSON.parse(JSON.stringify(executionReport(o, modelQuote(seeded, o.symbol, o.executedAt)))) as unknown);
    expect(sent.map((o) => reports.get(o.id)![0])).toEqual(expected);
    const statuses = expected.map((r) => (r as ExecutionQuality).status);
    expect(statuses.filter((s) => s === 'no_market_data').length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 'ok').length).toBeGreaterThan(sent.length / 2);
    for (const o of sent.filter((_, i) => i % 10 === 0)) {
      const viaFlux = JSON.parse(JSON.stringify(executionReport(o, await lookupEach(source, o.symbol, o.executedAt)))) as unknown;
      expect(reports.get(o.id)![0]).toEqual(viaFlux);
    }
  }

  return {
    app,
    prices,
    reports,
    sendOrders,
    check,
    sent,
    async close() {
      await Promise.allSettled([app.state === 'running' ? app.stop() : Promise.resolve(), reader.disconnect(), producer.disconnect()]);
    },
  };
}

describe('execution-quality on the real Kafka and InfluxDB', () => {
  beforeAll(() => requireServers('kafka', 'influxdb'));
  afterAll(async () => {
    await deleteTopics(topics);
    await Promise.allSettled(databases.map((d) => dropInfluxBucket(d)));
  });

  it(`${BULK_ORDERS.toLocaleString('en-US')} orders over ${SYMBOLS.length} symbols: exactly one report each, equal to the reference from the written points, in few queries`, async () => {
    const s = await scenario('bulk');
    try {
      // End to end: from the first order sent to the last report visible to a read-committed consumer.
      const started = performance.now();
      await s.sendOrders(BULK_ORDERS);
      await until(() => s.reports.size >= BULK_ORDERS, 180_000, `${BULK_ORDERS} reports`);
      const seconds = (performance.now() - started) / 1000;
      const queries = s.prices.queries;
      await s.app.stop();
      await new Promise((r) => setTimeout(r, 1000)); // time for any duplicate to show up
      await s.check();
      // Measured, never asserted: the machine is shared.
      console.log(
        `execution-quality: ${BULK_ORDERS} orders over ${SYMBOLS.length} symbols end to end in ${seconds.toFixed(2)} s = ${Math.round(BULK_ORDERS / seconds)} orders/s; ` +
          `${queries} InfluxDB queries = ${((queries / BULK_ORDERS) * 1000).toFixed(1)} per 1,000 orders (${process.env.EQ_IT_CONCURRENCY ? `concurrency ${process.env.EQ_IT_CONCURRENCY}` : 'batch agent defaults'})`,
      );
      // Batching works: well under one query per order (one per order would be 5,000). Measured 239 per
      // 1,000 orders on a quiet machine and 397 at load 10 (batches shrink when InfluxDB answers slowly under
      // CPU contention), so the bound leaves room for a busier CI machine.
      expect(queries).toBeLessThan(BULK_ORDERS * 0.7);
    } finally {
      await s.close();
    }
  }, 300_000);

  // Last: it stops the shared InfluxDB for a few seconds.
  it('InfluxDB down mid-run: nothing reported while it is down, nothing lost, still exactly one report per order', async () => {
    const s = await scenario('outage');
    try {
      await s.sendOrders(1000);
      await until(() => s.reports.size >= 1000, 120_000, 'the reports of the first 1,000 orders');
      await withServerStopped('influxdb', async () => {
        await s.sendOrders(1000);
        await new Promise((r) => setTimeout(r, 4000));
        expect(s.reports.size).toBe(1000);
      });
      await until(() => s.reports.size >= 2000, 120_000, 'the reports of the orders sent during the outage');
      await s.app.stop();
      await new Promise((r) => setTimeout(r, 1000));
      await s.check();
    } finally {
      await s.close();
    }
  }, 300_000);
});
