import { Client } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localServers, requireServers, uniqueName } from '../index.js';

describe('Elasticsearch 8 through @elastic/elasticsearch', () => {
  const index = uniqueName('smoke-search');
  let client: Client;

  beforeAll(async () => {
    await requireServers('elasticsearch');
    client = new Client({ node: localServers().elasticsearchUrl });
  });
  afterAll(async () => {
    await client.indices.delete({ index, ignore_unavailable: true });
    await client.close();
  });

  it('creates an index, indexes a document and finds it with a match query', async () => {
    await client.indices.create({ index, mappings: { properties: { title: { type: 'text' } } } });
    await client.index({ index, id: 'doc-1', document: { title: 'Kafka stream processing in TypeScript' }, refresh: 'wait_for' });
    await client.index({ index, id: 'doc-2', document: { title: 'Gardening for beginners' }, refresh: 'wait_for' });

    const result = await client.search<{ title: string }>({ index, size: 1, query: { match: { title: 'stream processing' } } });
    expect(result.hits.hits[0]?._id).toBe('doc-1');
    expect(result.hits.hits[0]?._source?.title).toContain('stream');
  });
});
