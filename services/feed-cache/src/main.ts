import { feedActivities } from '@stream/contracts';
import { createService, toError } from '@stream/core';
import { Redis } from 'ioredis';
import { readConfig } from './config.js';
import { FeedStore } from './feed-store.js';
import { createFeedServer } from './http.js';
import { feedAgent } from './agent.js';

let config;
try {
  config = readConfig();
} catch (error) {
  process.stderr.write(`feed-cache: ${toError(error).message}\n`);
  process.exit(1);
}

const service = createService({ id: 'feed-cache', groupId: config.KAFKA_GROUP_ID, brokers: config.KAFKA_BROKERS, opsPort: config.OPS_PORT, logLevel: config.LOG_LEVEL });
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (times) => Math.min(times * 200, 2000) });
redis.on('error', (error) => service.log.warn({ err: error }, 'redis connection error'));
const store = new FeedStore(redis, { maxItems: config.FEED_MAX_ITEMS, ttlSeconds: config.FEED_TTL_SECONDS });
service.readiness('redis', async () => (await redis.ping()) === 'PONG');
feedAgent(service.app, feedActivities, store);

const http = createFeedServer(store, service.log.child({ component: 'http' }));
http.listen(config.HTTP_PORT, () => service.log.info({ port: config.HTTP_PORT }, 'feed API listening'));
service.app.onStop(async () => {
  await new Promise<void>((resolve) => http.close(() => resolve()));
  await redis.quit();
});
await service.run();
