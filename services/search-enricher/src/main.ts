import { searchQueries, topResults } from '@stream/contracts';
import { createService, toError } from '@stream/core';
import { searchEnricherAgent } from './agent.js';
import { readConfig } from './config.js';
import { clusterAnswers, createElasticsearchClient } from './elasticsearch.js';
import { batchedSearcher, singleSearcher } from './searcher.js';

let config;
try {
  config = readConfig();
} catch (error) {
  process.stderr.write(`search-enricher: ${toError(error).message}\n`);
  process.exit(1);
}

const service = createService({
  id: 'search-enricher',
  groupId: config.KAFKA_GROUP_ID,
  brokers: config.KAFKA_BROKERS,
  opsPort: config.OPS_PORT,
  logLevel: config.LOG_LEVEL,
  outputs: [topResults],
});
const client = createElasticsearchClient({
  url: config.ELASTICSEARCH_URL,
  apiKey: config.ELASTICSEARCH_API_KEY,
  username: config.ELASTICSEARCH_USERNAME,
  password: config.ELASTICSEARCH_PASSWORD,
  timeoutMs: config.SEARCH_TIMEOUT_MS,
});
const searchOptions = { index: config.SEARCH_INDEX, fields: config.SEARCH_FIELDS, maxQueryChars: config.SEARCH_MAX_QUERY_CHARS, timeoutMs: config.SEARCH_TIMEOUT_MS };
const searcher =
  config.SEARCH_BATCH_SIZE > 1
    ? batchedSearcher(client, searchOptions, { maxBatch: config.SEARCH_BATCH_SIZE, maxWaitMs: config.SEARCH_BATCH_WAIT_MS })
    : singleSearcher(client, searchOptions);
service.readiness('elasticsearch', () => clusterAnswers(client, 1000));
searchEnricherAgent(service.app, searchQueries, topResults, searcher, { concurrency: config.SEARCH_CONCURRENCY });
service.app.onStop(() => client.close());
service.log.info({ index: config.SEARCH_INDEX, fields: config.SEARCH_FIELDS, batch: config.SEARCH_BATCH_SIZE, concurrency: config.SEARCH_CONCURRENCY }, 'search-enricher starting');
await service.run();
