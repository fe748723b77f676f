/**
 * Baseline, order-emailer: a hand-written kafkajs `eachBatch` (partitions consumed concurrently) doing the
 * service's I/O with the same clients: per order `SET key pending NX PX` (ioredis), the confirmation POSTed
 * with got (same body and headers as the service), `SET key sent EX`. At most `concurrency` orders are in
 * flight across partitions; a batch's offsets are committed once all its orders are done.
 */
import { confirmationEmail } from '@stream/order-emailer';
import { got } from 'got';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { BenchOrder } from '../service-data.js';
import { runConsumer } from './harness.js';
import { baselineConsumer, baselineKafka, parseValues, runBatches } from './kafkajs-baseline.js';
import { Limiter } from './limiter.js';
import { param } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const redis = new Redis(param(config, 'redisUrl'), { maxRetriesPerRequest: 1 });
  const prefix = param(config, 'keyPrefix');
  const url = param(config, 'emailerUrl');
  const token = param(config, 'token');
  const limiter = new Limiter(config.concurrency);
  const kafka = baselineKafka(config);
  const consumer = baselineConsumer(kafka, config);

  async function confirm(order: BenchOrder): Promise<void> {
    const key = `${prefix}${order.id}`;
    const claimed = await redis.set(key, `pending:${randomUUID()}`, 'PX', 15_000, 'NX');
    if (claimed === null) return; // sent (or being sent) already
    const response = await got.post(url, {
      json: confirmationEmail(order),
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': order.id, accept: 'application/json' },
      timeout: { request: 5000 },
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      responseType: 'text',
    });
    if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`email API answered ${response.statusCode} for ${order.id}`);
    await redis.set(key, 'sent', 'EX', 3600);
  }

  await runBatches(consumer, config, recorder, 'auto', async (payload) => {
    const { batch } = payload;
    const orders = parseValues(batch, BenchOrder);
    await Promise.all(
      orders.map((order) =>
        limiter.run(async () => {
          await confirm(order);
          recorder.handled(order.seq, order.producedAt);
        }),
      ),
    );
  });
  return async () => {
    await consumer.disconnect();
    await redis.quit();
  };
});
