/**
 * Ours, execution-quality: the service's `executionQualityAgent` (a batch agent, exactly-once) with its `MarketPrices`
 * (batched per symbol) over its `InfluxPriceSource` (Flux) on the real InfluxDB. Complete when the last
 * transaction (reports + offsets) committed.
 */
import { ExecutionQuality } from '@stream/contracts';
import { defineTopic } from '@stream/core';
import { EXECUTION_APP_OPTIONS, executionQualityAgent, MarketPrices } from '@stream/execution-quality';
import { z } from 'zod';
import { BenchOrder } from '../service-data.js';
import { count, runConsumer } from './harness.js';
import { priceSource } from './price-source.js';
import { concurrency } from './instrumentation.js';
import { recordingApp, serviceApp } from './service-app.js';

await runConsumer(
  async (config, recorder) => {
    if (!config.output) throw new Error('execution-quality needs an output topic');
    const input = defineTopic({ name: config.input, key: z.string().min(1), value: BenchOrder });
    const output = defineTopic({ name: config.output, key: z.string().min(1), value: ExecutionQuality });
    const source = priceSource(config);
    const prices = new MarketPrices(source);
    const app = serviceApp(config, recorder, { outputs: [output], exactlyOnce: true, ...EXECUTION_APP_OPTIONS });
    // The service's own defaults (batches of 500 / 20 ms per partition); STREAM_BENCH_CONCURRENCY caps orders in flight.
    const cap = concurrency(0);
    executionQualityAgent(recordingApp(app, recorder), input, output, prices, cap > 0 ? { concurrency: cap } : {});
    // Reported with the result, which is taken as soon as the run completes.
    void recorder.completed.then(
      () => count(recorder, 'influxQueries', prices.queries),
      () => undefined,
    );
    await app.start();
    return async () => {
      await app.stop();
    };
  },
  () => 'explicit',
);
