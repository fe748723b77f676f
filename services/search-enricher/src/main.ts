import { searchQueries, topResults } from '@stream/contracts';
import { searchEnricherAgent } from './agent.js';
import { searchEnricherService } from './config.js';
import { clusterAnswers, createElasticsearchClient } from './elasticsearch.js';
import { batchedSearcher, singleSearcher } from './searcher.js';

await searchEnricherService.run({ outputs: [topResults] }, (config, service) => {
  const client = createElasticsearchClient({
    url: config.ELASTICSEARCH_URL,
    apiKey: config.ELASTICSEARCH_API_KEY,
    username: config.ELASTICSEARCH_USERNAME,
    password: config.ELASTICSEARCH_PASSWORD,
    timeoutMs: config.SEARCH_TIMEOUT_MS,
  });
  const searchOptions = {
    index: config.SEARCH_INDEX,
    fields: config.SEARCH_FIELDS,
    maxQueryChars: config.SEARCH_MAX_QUERY_CHARS,
    timeoutMs: config.SEARCH_TIMEOUT_MS,
  };
  const batch = { maxBatch: config.SEARCH_BATCH_SIZE, maxWaitMs: config.SEARCH_BATCH_WAIT_MS };
  const searcher = config.SEARCH_BATCH_SIZE > 1 ? batchedSearcher(client, searchOptions, batch) : singleSearcher(client, searchOptions);
  service.readiness('elasticsearch', () => clusterAnswers(client, 1000));
  searchEnricherAgent(service.app, searchQueries, topResults, searcher, { concurrency: config.SEARCH_CONCURRENCY });
  service.app.onStop(() => client.close());
  service.log.info(
    { index: config.SEARCH_INDEX, fields: config.SEARCH_FIELDS, batch: config.SEARCH_BATCH_SIZE, concurrency: config.SEARCH_CONCURRENCY },
    'search-enricher starting',
  );
});
