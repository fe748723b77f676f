/**
 * Baseline, feed-cache: a hand-written kafkajs `eachBatch` doing the service's Redis work with the same
 * client (ioredis): per fetched batch, JSON.parse + zod of each activity, then one MULTI with a ZADD per
 * activity and, per user, ZREMRANGEBYRANK to the newest `maxItems`; then resolveOffset + commit.
 */
import { Redis } from 'ioredis';
import { BenchFeedActivity } from '../service-data.js';
import { runConsumer } from './harness.js';
import { baselineConsumer, baselineKafka, parseValues, runBatches } from './kafkajs-baseline.js';
import { param } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const redis = new Redis(param(config, 'redisUrl'), { maxRetriesPerRequest: 1 });
  const prefix = param(config, 'keyPrefix');
  const maxItems = Number(param(config, 'maxItems'));
  const kafka = baselineKafka(config);
  const consumer = baselineConsumer(kafka, config);
  await runBatches(consumer, config, recorder, 'auto', async (payload) => {
    const { batch } = payload;
    const activities = parseValues(batch, BenchFeedActivity);
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
  });
  return async () => {
    await consumer.disconnect();
    await redis.quit();
  };
});
