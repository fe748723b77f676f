/**
 * feed-cache's public face: what the bench, the demo and the fault suite build their own feed-cache consumers
 * from. The service itself starts from `dist/main.js`.
 */
export { DEFAULT_MAX_FUTURE_MS, feedAgent, feedProblem, type FeedBounds } from './agent.js';
export { FeedStore, memberOf, type FeedItem, type FeedStoreOptions } from './feed-store.js';
export { createFeedServer, FEED_SERVER_DEFAULTS, feedBody, type FeedServerOptions } from './http.js';
export { FeedCacheConfig, feedCacheService, readConfig } from './config.js';
