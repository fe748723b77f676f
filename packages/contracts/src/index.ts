export { isoDate } from './dates.js';
export { DATE_WINDOW, identifier, LIMITS, price, quantity, text } from './limits.js';
export { FeedActivity, feedActivities } from './feed.js';
export {
  Order,
  orders,
  ExecutionQuality,
  executionQuality,
  SlippageSample,
  slippageBySymbol,
  ExecutionQualitySummary,
  executionQualitySummary,
} from './orders.js';
export { SearchQuery, searchQueries, SearchHit, TopResult, topResults } from './search.js';

import { feedActivities } from './feed.js';
import { executionQuality, executionQualitySummary, orders, slippageBySymbol } from './orders.js';
import { searchQueries, topResults } from './search.js';

/** Every topic the services use, for `stream topics create` and test set-up. */
export const allTopics = [feedActivities, orders, executionQuality, slippageBySymbol, executionQualitySummary, searchQueries, topResults] as const;
