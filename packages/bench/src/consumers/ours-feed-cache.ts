/**
 * Ours, feed-cache: the service's `feedAgent` (a batch agent: per partition up to 500 records or what came
 * within 20 ms, the partitions side by side, one MULTI per batch)
 * writing to the service's `FeedStore` on the real Redis. The store is subclassed only to report each
 * activity to the Recorder once its batch is written.
 */
import type { FeedActivity } from '@stream/contracts';
import { defineTopic } from '@stream/core';
import { feedAgent, FeedStore } from '@stream/feed-cache';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { BenchFeedActivity, stampOf } from '../service-data.js';
import { runConsumer, type Recorder } from './harness.js';
import { param, serviceApp } from './service-app.js';

class RecordingFeedStore extends FeedStore {
  readonly #recorder: Recorder;

  constructor(redis: Redis, options: ConstructorParameters<typeof FeedStore>[1], recorder: Recorder) {
    super(redis, options);
    this.#recorder = recorder;
  }

  override async write(activities: readonly FeedActivity[]): Promise<void> {
    this.#recorder.begin();
    await super.write(activities);
    for (const activity of activities) {
      const { seq, producedAt } = stampOf(activity);
      this.#recorder.handled(seq, producedAt);
    }
  }
}

await runConsumer(async (config, recorder) => {
  const redis = new Redis(param(config, 'redisUrl'), { maxRetriesPerRequest: 1 });
  const input = defineTopic({ name: config.input, key: z.string().min(1), value: BenchFeedActivity });
  const app = serviceApp(config, recorder);
  const store = new RecordingFeedStore(redis, { maxItems: Number(param(config, 'maxItems')), ttlSeconds: 0, keyPrefix: param(config, 'keyPrefix') }, recorder);
  feedAgent(app, input, store);
  await app.start();
  return async () => {
    await app.stop();
    await redis.quit();
  };
});
