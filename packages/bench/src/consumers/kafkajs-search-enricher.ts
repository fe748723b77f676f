/**
 * Baseline, search-enricher: a hand-written kafkajs `eachBatch` with a transactional producer (exactly-once,
 * like the service): per fetched batch, JSON.parse + zod of each query, `msearch` round trips of
 * `take.size` searches (the service's `msearchTopHits`, same Elasticsearch client and query), the results
 * checked against the contract, then the results and the batch's offset in one transaction. Batches run one
 * at a time (one producer, one transaction at a time).
 */
import { TopResult } from '@stream/contracts';
import { createElasticsearchClient } from '@stream/search-enricher/elasticsearch';
import { msearchTopHits } from '@stream/search-enricher/searcher';
import { Kafka, logLevel } from 'kafkajs';
import { BenchSearchQuery } from '../service-data.js';
import { count, runConsumer } from './harness.js';
import { searchOptions } from './search-options.js';
import { param } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const output = config.output;
  if (!output) throw new Error('search-enricher needs an output topic');
  const options = searchOptions(config);
  const client = createElasticsearchClient({ url: param(config, 'elasticsearchUrl'), timeoutMs: options.timeoutMs });
  const kafka = new Kafka({ clientId: 'bench-kafkajs', brokers: [...config.brokers], logLevel: logLevel.ERROR });
  const producer = kafka.producer({ transactionalId: `${config.groupId}-tx`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  const consumer = kafka.consumer({ groupId: config.groupId, readUncommitted: false, maxBytesPerPartition: 1024 * 1024, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [config.input], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 1,
    eachBatch: async (payload) => {
      const { batch } = payload;
      if (!payload.isRunning() || payload.isStale() || batch.messages.length === 0) return;
      recorder.begin();
      count(recorder, 'batchesFetched');
      const queries = batch.messages.filter((m) => m.value).map((m) => BenchSearchQuery.parse(JSON.parse(m.value!.toString('utf8'))));
      const messages: { key: string; value: string }[] = [];
      for (let start = 0; start < queries.length; start += config.take.size) {
        const chunk = queries.slice(start, start + config.take.size);
        const outcomes = await msearchTopHits(client, options, chunk.map((q) => q.queryString));
        chunk.forEach((query, i) => {
          const outcome = outcomes[i]!;
          if (!outcome.ok) throw outcome.error;
          const { seq: _seq, producedAt: _producedAt, ...fields } = query;
          messages.push({ key: query.id, value: JSON.stringify(TopResult.parse({ ...fields, topResult: outcome.value.hit, tookMs: outcome.value.tookMs })) });
        });
      }
      const transaction = await producer.transaction();
      try {
        await transaction.send({ topic: output, messages });
        await transaction.sendOffsets({
          consumerGroupId: config.groupId,
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(BigInt(batch.lastOffset()) + 1n) }] }],
        });
        await transaction.commit();
      } catch (error) {
        await transaction.abort().catch(() => undefined);
        throw error;
      }
      for (const query of queries) recorder.handled(query.seq, query.producedAt);
      payload.resolveOffset(batch.lastOffset());
      await payload.heartbeat();
    },
  });
  return async () => {
    await consumer.disconnect();
    await producer.disconnect();
    await client.close();
  };
});
