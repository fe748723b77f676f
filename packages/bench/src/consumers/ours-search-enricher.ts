/**
 * Ours, search-enricher: the service's `searchEnricherAgent` (exactly-once) with its `batchedSearcher`
 * (msearch) or, with mode `single`, its `singleSearcher`, on the real Elasticsearch. Complete when the last
 * transaction (results + offsets) committed.
 */
import { TopResult } from '@stream/contracts';
import { defineTopic } from '@stream/core';
import { searchEnricherAgent, createElasticsearchClient, batchedSearcher, singleSearcher } from '@stream/search-enricher';
import { z } from 'zod';
import { BenchSearchQuery } from '../service-data.js';
import { runConsumer } from './harness.js';
import { concurrency } from './instrumentation.js';
import { param, recordingApp, serviceApp } from './service-app.js';
import { searchOptions } from './search-options.js';

await runConsumer(
  async (config, recorder) => {
    if (!config.output) throw new Error('search-enricher needs an output topic');
    const input = defineTopic({ name: config.input, key: z.string().min(1), value: BenchSearchQuery });
    const output = defineTopic({ name: config.output, key: z.string().min(1), value: TopResult });
    const options = searchOptions(config);
    const client = createElasticsearchClient({ url: param(config, 'elasticsearchUrl'), timeoutMs: options.timeoutMs });
    const searcher =
      config.mode === 'single'
        ? singleSearcher(client, options)
        : batchedSearcher(client, options, { maxBatch: config.take.size, maxWaitMs: config.take.withinMs });
    const app = serviceApp(config, recorder, { outputs: [output], exactlyOnce: true });
    searchEnricherAgent(recordingApp(app, recorder), input, output, searcher, { concurrency: concurrency(config.concurrency) });
    await app.start();
    return async () => {
      await app.stop();
      await client.close();
    };
  },
  () => 'explicit',
);
