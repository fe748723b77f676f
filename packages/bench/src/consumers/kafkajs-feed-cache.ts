/**
 * Baseline, feed-cache: a hand-written kafkajs `eachBatch` doing the service's Redis work with the same
 * client (ioredis): per fetched batch, JSON.parse + zod of each activity, then one MULTI with a ZADD per
 * activity and, per user, ZREMRANGEBYRANK to the newest `maxItems`; then resolveOffset + commit.
 */
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import { BenchFeedActivity } from '../service-data.js';
import { count, runConsumer } from './harness.js';
import { param } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const redis = new Redis(param(config, 'redisUrl'), { maxRetriesPerRequest: 1 });
  const prefix = param(config, 'keyPrefix');
  const maxItems = Number(param(config, 'maxItems'));
  const kafka = new Kafka({ clientId: 'bench-kafkajs', brokers: [...config.brokers], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: config.groupId, readUncommitted: false, maxBytesPerPartition: 1024 * 1024, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
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
      const activities = batch.messages.filter((m) => m.value).map((m) => BenchFeedActivity.parse(JSON.parse(m.value!.toString('utf8'))));
      if (activities.length > 0) {
        const multi = redis.multi();
        const users = new Set<string>();
        for (const a of activities) {
          multi.zadd(`${prefix}${a.user}`, a.timestamp.getTime(), JSON.stringify([a.id, a.message]));
          users.add(a.user);
        }
        for (const user of users) multi.zremrangebyrank(`${prefix}${user}`, 0, -(maxItems + 1));
        const results = await multi.exec();
        const failed = results?.find(([error]) => error);
        if (!results || failed) throw new Error(`feed write failed: ${failed?.[0]?.message ?? 'transaction discarded'}`);
      }
      for (const a of activities) recorder.handled(a.seq, a.producedAt);
      payload.resolveOffset(batch.lastOffset());
      await payload.commitOffsetsIfNecessary();
      await payload.heartbeat();
    },
  });
  return async () => {
    await consumer.disconnect();
    await redis.quit();
  };
});
