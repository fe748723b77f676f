/**
 * Baseline, search-enricher: a hand-written kafkajs `eachBatch` with a transactional producer (exactly-once,
 * like the service): per fetched batch, JSON.parse + zod of each query, `msearch` round trips of
 * `take.size` searches (the service's `msearchTopHits`, same Elasticsearch client and query), the results
 * checked against the contract, then the results and the batch's offset in one transaction. Batches run one
 * at a time (one producer, one transaction at a time).
 */
import { TopResult } from '@stream/contracts';
import { createElasticsearchClient, msearchTopHits } from '@stream/search-enricher';
import { BenchSearchQuery } from '../service-data.js';
import { runConsumer } from './harness.js';
import { baselineConsumer, baselineKafka, baselineTransactionalProducer, commitInTransaction, parseValues, runBatches } from './kafkajs-baseline.js';
import { searchOptions } from './search-options.js';
import { param } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const output = config.output;
  if (!output) throw new Error('search-enricher needs an output topic');
  const options = searchOptions(config);
  const client = createElasticsearchClient({ url: param(config, 'elasticsearchUrl'), timeoutMs: options.timeoutMs });
  const kafka = baselineKafka(config);
  const producer = baselineTransactionalProducer(kafka, config);
  const consumer = baselineConsumer(kafka, config);
  await producer.connect();
  await runBatches(consumer, config, recorder, 'transaction', async (payload) => {
    const { batch } = payload;
    const queries = parseValues(batch, BenchSearchQuery);
    const messages: { key: string; value: string }[] = [];
    for (let start = 0; start < queries.length; start += config.take.size) {
      const chunk = queries.slice(start, start + config.take.size);
      const outcomes = await msearchTopHits(
        client,
        options,
        chunk.map((q) => q.queryString),
      );
      chunk.forEach((query, i) => {
        const outcome = outcomes[i]!;
        if (!outcome.ok) throw outcome.error;
        const { seq: _seq, producedAt: _producedAt, ...fields } = query;
        messages.push({ key: query.id, value: JSON.stringify(TopResult.parse({ ...fields, topResult: outcome.value.hit, tookMs: outcome.value.tookMs })) });
      });
    }
    await commitInTransaction(producer, config.groupId, batch, output, messages);
    for (const query of queries) recorder.handled(query.seq, query.producedAt);
  });
  return async () => {
    await consumer.disconnect();
    await producer.disconnect();
    await client.close();
  };
});
