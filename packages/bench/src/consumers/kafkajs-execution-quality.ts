/**
 * Baseline, execution-quality: a hand-written kafkajs `eachBatch` with a transactional producer (exactly-once,
 * like the service): per fetched batch, JSON.parse + zod of each order, the orders grouped by symbol (and
 * span, the service's `planQueries`), ONE Flux window query per group through the same InfluxDB client
 * (the service's `InfluxPriceSource`), each order answered from those points (`quoteAt`) and reported
 * (`executionReport`), then the reports and the batch's offset in one transaction. Batches run one at a
 * time (one producer, one transaction at a time); a batch's queries run in parallel.
 */
import { ExecutionQuality } from '@stream/contracts';
import { planQueries, quoteAt, type MarketQuote, executionReport, dateToNanos } from '@stream/execution-quality';
import { BenchOrder } from '../service-data.js';
import { count, runConsumer } from './harness.js';
import { priceSource } from './price-source.js';
import { baselineConsumer, baselineKafka, baselineTransactionalProducer, commitInTransaction, parseValues, runBatches } from './kafkajs-baseline.js';

/** The service's default LOOKUP_MAX_SPAN. */
const MAX_SPAN_NS = 15n * 60_000n * 1_000_000n;

await runConsumer(async (config, recorder) => {
  const output = config.output;
  if (!output) throw new Error('execution-quality needs an output topic');
  const source = priceSource(config);
  const kafka = baselineKafka(config);
  const producer = baselineTransactionalProducer(kafka, config);
  const consumer = baselineConsumer(kafka, config);
  await producer.connect();
  await runBatches(consumer, config, recorder, 'transaction', async (payload) => {
    const { batch } = payload;
    const orders = parseValues(batch, BenchOrder);
    const lookups = orders.map((order, index) => ({ symbol: order.symbol, atNs: dateToNanos(order.executedAt), index }));
    const quotes = new Array<MarketQuote | null>(orders.length).fill(null);
    await Promise.all(
      planQueries(lookups, MAX_SPAN_NS).map(async (group) => {
        const first = group[0]!;
        const last = group[group.length - 1]!;
        count(recorder, 'influxQueries');
        const points = await source.window(first.symbol, first.atNs, last.atNs);
        const sorted = [...points].sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : a.price - b.price));
        for (const g of group) quotes[g.index] = quoteAt(sorted, g.atNs, source.lookbackNs);
      }),
    );
    const messages = orders.map((order, i) => ({ key: order.id, value: JSON.stringify(ExecutionQuality.parse(executionReport(order, quotes[i]!))) }));
    await commitInTransaction(producer, config.groupId, batch, output, messages);
    for (const order of orders) recorder.handled(order.seq, order.producedAt);
  });
  return async () => {
    await consumer.disconnect();
    await producer.disconnect();
  };
});
