/**
 * search-enricher's public face: what the bench, the demo and the fault suite build their own search-enricher
 * consumers and corpus from. The service itself starts from `dist/main.js`; the corpus loader runs from
 * `dist/load-corpus.js`.
 */
export { DEFAULT_RETRY, enrich, searchEnricherAgent, type EnricherOptions } from './agent.js';
export {
  corpusDocument,
  corpusIndexSettings,
  createCorpusIndex,
  generateCorpus,
  indexDocuments,
  loadCorpus,
  type LoadCorpusOptions,
  type ProductDoc,
} from './corpus.js';
export { clusterAnswers, createElasticsearchClient, type ElasticsearchSettings } from './elasticsearch.js';
export { RetryableSearchError } from './es-errors.js';
export { buildTopHitSearch, parseFields, truncateQuery, type QueryOptions, type TopHitSearch } from './query.js';
export {
  batchedSearcher,
  msearchTopHits,
  singleSearcher,
  topHitOf,
  type BatchOptions,
  type SearcherOptions,
  type TopHit,
  type TopHitSearcher,
} from './searcher.js';
export { SearchEnricherConfig, readConfig, searchEnricherService } from './config.js';
