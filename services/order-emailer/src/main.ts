import { orders } from '@stream/contracts';
import { connectRedis } from '@stream/core';
import { Redis } from 'ioredis';
import { emailerAgent, OrderConfirmer } from './agent.js';
import { orderEmailerService } from './config.js';
import { DedupeStore } from './dedupe.js';
import { EmailClient } from './emailer.js';

await orderEmailerService.run((config, service) => {
  const redis = connectRedis(Redis, config.REDIS_URL, service);
  const emailer = new EmailClient({
    url: config.EMAILER_URL,
    token: config.EMAILER_TOKEN,
    timeoutMs: config.EMAILER_TIMEOUT_MS,
    maxRetryAfterMs: config.EMAILER_MAX_RETRY_AFTER_SECONDS * 1000,
  });
  const dedupe = new DedupeStore(redis, { leaseMs: config.DEDUPE_LEASE_MS, ttlSeconds: config.DEDUPE_TTL_SECONDS, keyPrefix: config.DEDUPE_KEY_PREFIX });
  emailerAgent(service.app, orders, new OrderConfirmer(emailer, dedupe), { concurrency: config.EMAILER_CONCURRENCY });
});
