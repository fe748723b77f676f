/** Baseline, backlog-memory: kafkajs `eachBatch` with the same light work per record, resolveOffset + commit. */
import { Kafka, logLevel } from 'kafkajs';
import { Trade, enrich } from '../data.js';
import { count, runConsumer } from './harness.js';

await runConsumer(async (config, recorder) => {
  const kafka = new Kafka({ clientId: 'bench-kafkajs', brokers: [...config.brokers], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({
    groupId: config.groupId,
    readUncommitted: false,
    maxBytesPerPartition: 1024 * 1024,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
  });
  let notional = 0;
  await consumer.connect();
  await consumer.subscribe({ topics: [config.input], fromBeginning: true });
  await consumer.run({
    autoCommit: true,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    eachBatch: async (payload) => {
      const { batch } = payload;
      if (!payload.isRunning() || payload.isStale()) return;
      recorder.begin();
      count(recorder, 'batchesFetched');
      for (const message of batch.messages) {
        if (!message.value) continue;
        const trade = Trade.parse(JSON.parse(message.value.toString('utf8')));
        notional += enrich(trade).notional;
        recorder.handled(trade.seq, trade.producedAt);
        payload.resolveOffset(message.offset);
      }
      payload.resolveOffset(batch.lastOffset());
      await payload.commitOffsetsIfNecessary();
      await payload.heartbeat();
    },
  });
  return async () => {
    await consumer.disconnect();
    if (!Number.isFinite(notional)) throw new Error('unreachable: keeps the work from being optimised away');
  };
});
