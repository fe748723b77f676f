import { feedActivities } from '@stream/contracts';
import { connectRedis } from '@stream/core';
import { Redis } from 'ioredis';
import { feedAgent } from './agent.js';
import { feedCacheService } from './config.js';
import { FeedStore } from './feed-store.js';
import { createFeedServer } from './http.js';

await feedCacheService.run((config, service) => {
  const redis = connectRedis(Redis, config.REDIS_URL, service);
  const store = new FeedStore(redis, { maxItems: config.FEED_MAX_ITEMS, ttlSeconds: config.FEED_TTL_SECONDS });
  feedAgent(service.app, feedActivities, store);

  const http = createFeedServer(store, service.log.child({ component: 'http' }));
  http.listen(config.HTTP_PORT, () => service.log.info({ port: config.HTTP_PORT }, 'feed API listening'));
  service.app.onStop(() => new Promise<void>((resolve) => http.close(() => resolve())));
});
