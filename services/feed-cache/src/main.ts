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
  feedAgent(service.app, feedActivities, store, undefined, {
    maxFutureMs: config.FEED_MAX_FUTURE_SECONDS * 1000,
    maxAgeMs: config.FEED_MAX_AGE_SECONDS * 1000,
  });

  const http = createFeedServer(store, service.log.child({ component: 'http' }), {
    ...(config.FEED_API_TOKEN === undefined ? {} : { token: config.FEED_API_TOKEN }),
    maxLimit: config.HTTP_MAX_LIMIT,
    maxResponseBytes: config.HTTP_MAX_RESPONSE_BYTES,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
  });
  http.once('error', (error) => {
    service.log.fatal({ err: error, host: config.HTTP_HOST, port: config.HTTP_PORT }, 'cannot start the feed API');
    process.stderr.write(`feed-cache: cannot start the feed API on ${config.HTTP_HOST}:${config.HTTP_PORT}: ${error.message}\n`);
    process.exit(1);
  });
  http.listen(config.HTTP_PORT, config.HTTP_HOST, () =>
    service.log.info({ host: config.HTTP_HOST, port: config.HTTP_PORT, authentication: config.FEED_API_TOKEN !== undefined }, 'feed API listening'),
  );
  service.app.onStop(
    () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  );
});
