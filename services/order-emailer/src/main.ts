import { orders } from '@stream/contracts';
import { createService, toError } from '@stream/core';
import { Redis } from 'ioredis';
import { emailerAgent, OrderConfirmer } from './agent.js';
import { readConfig } from './config.js';
import { DedupeStore } from './dedupe.js';
import { EmailClient } from './emailer.js';

let config;
try {
  config = readConfig();
} catch (error) {
  process.stderr.write(`order-emailer: ${toError(error).message}\n`);
  process.exit(1);
}

const service = createService({ id: 'order-emailer', groupId: config.KAFKA_GROUP_ID, brokers: config.KAFKA_BROKERS, opsPort: config.OPS_PORT, logLevel: config.LOG_LEVEL });
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (times) => Math.min(times * 200, 2000) });
redis.on('error', (error) => service.log.warn({ err: error }, 'redis connection error'));
service.readiness('redis', async () => (await redis.ping()) === 'PONG');

const emailer = new EmailClient({
  url: config.EMAILER_URL,
  token: config.EMAILER_TOKEN,
  timeoutMs: config.EMAILER_TIMEOUT_MS,
  maxRetryAfterMs: config.EMAILER_MAX_RETRY_AFTER_SECONDS * 1000,
});
const dedupe = new DedupeStore(redis, { leaseMs: config.DEDUPE_LEASE_MS, ttlSeconds: config.DEDUPE_TTL_SECONDS, keyPrefix: config.DEDUPE_KEY_PREFIX });
emailerAgent(service.app, orders, new OrderConfirmer(emailer, dedupe), { concurrency: config.EMAILER_CONCURRENCY });

service.app.onStop(async () => {
  await redis.quit();
});
await service.run();
