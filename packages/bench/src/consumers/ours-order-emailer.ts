/**
 * Ours, order-emailer: the service's `emailerAgent` with its `OrderConfirmer` (Redis claim, POST through the
 * service's got-based `EmailClient`, Redis `sent` record) on the real Redis and the runner's email sink.
 */
import { defineTopic } from '@stream/core';
import { emailerAgent, OrderConfirmer, DedupeStore, EmailClient } from '@stream/order-emailer';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { BenchOrder } from '../service-data.js';
import { runConsumer } from './harness.js';
import { concurrency } from './instrumentation.js';
import { param, recordingApp, serviceApp } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const redis = new Redis(param(config, 'redisUrl'), { maxRetriesPerRequest: 1 });
  const input = defineTopic({ name: config.input, key: z.string().min(1), value: BenchOrder });
  const app = serviceApp(config, recorder);
  const dedupe = new DedupeStore(redis, { leaseMs: 15_000, ttlSeconds: 3600, keyPrefix: param(config, 'keyPrefix') });
  const emailer = new EmailClient({ url: param(config, 'emailerUrl'), token: param(config, 'token'), timeoutMs: 5000, maxRetryAfterMs: 1000 });
  emailerAgent(recordingApp(app, recorder), input, new OrderConfirmer(emailer, dedupe), { concurrency: concurrency(config.concurrency) });
  await app.start();
  return async () => {
    await app.stop();
    await redis.quit();
  };
});
