import type { Client } from '@elastic/elasticsearch';
import { searchQueries, topResults, type TopResult } from '@stream/contracts';
import { createTestApp, type TestHarness } from '@stream/core/testing';
import { requireServers, uniqueName } from '@stream/local-stack';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { corpusIndex, dropIndex, FlakyProxy, SPECIAL_DOCS, testClient, waitFor } from '../test/support.js';
import { corpusDocument, createCorpusIndex, indexDocuments } from './corpus.js';
import { searchEnricherAgent } from './agent.js';
import { batchedSearcher, singleSearcher, type SearcherOptions, type TopHitSearcher } from './searcher.js';

let client: Client;
let index: string;
let h: TestHarness | undefined;
const extraIndices: string[] = [];
const fields = ['title^2', 'body', 'tags'];
const fastRetry = { attempts: Infinity, backoff: { initialMs: 20, maxMs: 200 } };

const query = (id: string, queryString: string) => ({ id, queryString, userId: 'user-1', timestamp: '2026-01-01T00:00:00.000Z' });
const send = (...values: ReturnType<typeof query>[]) => h!.send(searchQueries, ...values.map((value) => ({ key: value.id, value })));

function options(overrides: Partial<SearcherOptions> = {}): SearcherOptions {
  return { index, fields, maxQueryChars: 1000, timeoutMs: 10_000, ...overrides };
}

async function start(searcher: TopHitSearcher = batchedSearcher(client, options(), { maxBatch: 64, maxWaitMs: 2 })): Promise<TestHarness> {
  h = await createTestApp({ id: uniqueName('search-enricher'), outputs: [topResults] }, (app) =>
    searchEnricherAgent(app, searchQueries, topResults, searcher, { concurrency: 64, retry: fastRetry }),
  );
  return h;
}

/** The outputs by query id, checking there is exactly one per id. */
async function results(): Promise<Map<string, TopResult>> {
  const produced = await h!.produced(topResults);
  const byId = new Map<string, TopResult>();
  for (const r of produced) {
    expect(r.key).toBe(r.value.id);
    expect(byId.has(r.key), `two results for ${r.key}`).toBe(false);
    byId.set(r.key, r.value);
  }
  return byId;
}

describe('search-enricher on the memory transport with the real Elasticsearch', () => {
  beforeAll(() => requireServers('elasticsearch'));
  beforeEach(async () => {
    client = testClient();
    index = await corpusIndex(client, 200);
  });
  afterEach(async () => {
    await h?.stop();
    h = undefined;
    await dropIndex(client, index, ...extraIndices.splice(0));
    await client.close();
  });

  it('publishes each query with its top hit, keyed by query id', async () => {
    await start();
    await send(query('q1', 'zanzibar espresso'), query('q2', 'quokka plush toy'));
    await h!.settle(30_000);
    const byId = await results();
    expect(byId.get('q1')).toEqual({
      ...query('q1', 'zanzibar espresso'),
      timestamp: new Date('2026-01-01T00:00:00.000Z'),
      topResult: { id: 'special-1', index, score: expect.any(Number) as number, source: SPECIAL_DOCS[0] },
      tookMs: expect.any(Number) as number,
    });
    expect(byId.get('q2')?.topResult?.id).toBe('special-2');
    expect(h!.deadLetters(searchQueries)).toEqual([]);
  });

  it('publishes topResult: null when nothing matches (not an error)', async () => {
    await start();
    await send(query('q1', 'xylophone harpsichord'), query('q2', ''), query('q3', '   '));
    await h!.settle(30_000);
    const byId = await results();
    expect([...byId.values()].map((r) => r.topResult)).toEqual([null, null, null]);
    expect(h!.deadLetters(searchQueries)).toEqual([]);
  });

  it('searches hostile input as plain text: no syntax, no match-everything', async () => {
    // Proof that the corpus would match everything under query syntax: query_string takes *:* as match_all.
    const syntax = await client.search({ index, size: 1, query: { query_string: { query: '*:*' } } });
    expect(syntax.hits.hits).toHaveLength(1);

    await start();
    const hostile = [
      '*:*',
      'title:x OR 1=1',
      '{"query":{"match_all":{}}}',
      '"} }, "query": { "match_all": {} }, "x": {"',
      'title:(* OR ?) -body:x',
      '_exists_:title',
      '/.*/',
      "'; DROP TABLE products; --",
      '\\\\ \u0000 <script>alert(1)</script>',
    ];
    await send(...hostile.map((text, i) => query(`h${i}`, text)));
    // The same operators around a real word find that word's documents, as text.
    await send(query('lamp', 'lamp OR title:x AND 1=1'));
    await h!.settle(30_000);
    const byId = await results();
    for (let i = 0; i < hostile.length; i += 1) expect(byId.get(`h${i}`)?.topResult, hostile[i]).toBeNull();
    const lamp = byId.get('lamp')?.topResult;
    expect(lamp?.source.title).toMatch(/lamp/);
    // …and exactly what searching the one word the corpus knows gives: the rest is words it does not know
    // (the standard analyzer keeps "title:x" as one token), not operators.
    const plain = await client.search({ index, size: 1, query: { multi_match: { query: 'lamp', fields } } });
    expect(lamp?.id).toBe(plain.hits.hits[0]?._id);
    expect(h!.deadLetters(searchQueries)).toEqual([]);
  });

  it('searches only the first SEARCH_MAX_QUERY_CHARS characters of long input', async () => {
    const filler = 'lorem ipsum dolor '.repeat(60); // 1,080 characters of words the corpus lacks
    await start(batchedSearcher(client, options({ maxQueryChars: 1000 }), { maxBatch: 64, maxWaitMs: 2 }));
    const huge = 'zzz '.repeat(2500); // 10,000 characters
    const manyTerms = Array.from({ length: 2500 }, (_, i) => `t${i}`).join(' '); // ~12,000 characters, all distinct terms
    await send(
      query('late', `${filler} zanzibar`),
      query('early', `zanzibar ${filler}`),
      query('huge', huge),
      query('huge-hit', `quokka ${huge}`),
      query('terms', manyTerms),
    );
    await h!.settle(30_000);
    const byId = await results();
    expect(byId.get('late')?.topResult).toBeNull();
    expect(byId.get('early')?.topResult?.id).toBe('special-1');
    expect(byId.get('huge')?.topResult).toBeNull();
    expect(byId.get('huge-hit')?.topResult?.id).toBe('special-2');
    expect(byId.get('terms')?.topResult).toBeNull();
    expect(h!.deadLetters(searchQueries)).toEqual([]);
    // The published query is the user's, untouched.
    expect(byId.get('huge')?.queryString).toBe(huge);
  });

  it('gives through msearch batches exactly what single searches give', async () => {
    const texts = Array.from({ length: 150 }, (_, n) => {
      const doc = corpusDocument((n * 13) % 200);
      return n % 3 === 0 ? doc.title : n % 3 === 1 ? `${doc.tags[1]} ${doc.body.split(' ')[2]}` : `unknownword${n}`;
    });
    await start(batchedSearcher(client, options(), { maxBatch: 25, maxWaitMs: 5 }));
    await send(...texts.map((t, n) => query(`b${n}`, t)));
    await h!.settle(60_000);
    const byId = await results();
    expect(byId.size).toBe(texts.length);
    const single = singleSearcher(client, options({ timeoutMs: 60_000 }));
    for (let n = 0; n < texts.length; n += 1) {
      const direct = await single.top(texts[n]!);
      expect(byId.get(`b${n}`)?.topResult, texts[n]).toEqual(direct.hit);
    }
    expect([...byId.values()].filter((r) => r.topResult === null).length).toBe(50);
  });

  it('dead-letters records that do not fit the contract and keeps going', async () => {
    await start();
    await h!.sendRaw('search_queries', { key: 'bad-1', value: '{"id": "bad-1", "queryString": ' });
    await h!.sendRaw('search_queries', { key: 'bad-2', value: JSON.stringify({ id: 'bad-2', userId: 'u', timestamp: '2026-01-01T00:00:00Z' }) });
    await h!.sendRaw('search_queries', { key: 'bad-3', value: JSON.stringify({ ...query('bad-3', 'x'), queryString: 'x'.repeat(100_001) }) });
    await h!.sendRaw('search_queries', { key: 'bad-4', value: JSON.stringify({ ...query('bad-4', 'lamp'), timestamp: 'yesterday' }) });
    await send(query('good', 'zanzibar'));
    await h!.settle(30_000);
    const dead = h!.deadLetters(searchQueries).sort((a, b) => (a.key! < b.key! ? -1 : 1));
    expect(dead.map((d) => [d.key, d.errorClass])).toEqual([
      ['bad-1', 'DecodeError'],
      ['bad-2', 'SchemaValidationError'],
      ['bad-3', 'SchemaValidationError'],
      ['bad-4', 'SchemaValidationError'],
    ]);
    expect(dead[1]!.errorMessage).toMatch(/value\.queryString/);
    expect([...(await results()).keys()]).toEqual(['good']);
  });

  it('dead-letters a query Elasticsearch rejects for good, with its reason, and publishes the rest', async () => {
    // SEARCH_FIELDS pointing at a double: numbers are valid queries, words never will be (400).
    await start(batchedSearcher(client, options({ fields: ['price'] }), { maxBatch: 64, maxWaitMs: 5 }));
    await send(query('num', '12.5'), query('words', 'red lamp'), query('num2', '99.99'));
    await h!.settle(30_000);
    const dead = h!.deadLetters(searchQueries);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ key: 'words', errorClass: 'NonRetryableError', attempts: 1 });
    expect(dead[0]!.errorMessage).toMatch(
      /^elasticsearch answered 400: search_phase_execution_exception: all shards failed; root cause query_shard_exception: failed to create query: For input string: "red lamp"; caused by number_format_exception/,
    );
    const byId = await results();
    expect(byId.get('num')?.topResult?.id).toBe('special-1');
    expect(byId.get('num2')?.topResult?.id).toBe('special-2');
    expect(byId.has('words')).toBe(false);
  });

  it('waits while the index is missing, then succeeds once it exists; nothing is lost or dead-lettered', async () => {
    const alias = uniqueName('se-later');
    await start(batchedSearcher(client, options({ index: alias }), { maxBatch: 64, maxWaitMs: 2 }));
    await send(query('w1', 'zanzibar'), query('w2', 'quokka plush'), query('w3', 'xylophone'));
    // Retried for a while: nothing published, nothing dead-lettered, nothing committed.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await h!.produced(topResults)).toEqual([]);
    expect(h!.deadLetters(searchQueries)).toEqual([]);
    expect([...h!.committed(searchQueries).values()].reduce((a, b) => a + b, 0)).toBe(0);
    expect(h!.app.health().agents[0]!.inFlight).toBe(3);
    // The index appears complete at once (filled, then aliased), as an operator would publish it.
    const real = uniqueName('se-real');
    extraIndices.push(real);
    await createCorpusIndex(client, real);
    await indexDocuments(client, real, SPECIAL_DOCS);
    await client.indices.putAlias({ index: real, name: alias });
    await h!.settle(30_000);
    const byId = await results();
    expect(byId.get('w1')?.topResult).toMatchObject({ id: 'special-1', index: real });
    expect(byId.get('w2')?.topResult?.id).toBe('special-2');
    expect(byId.get('w3')?.topResult).toBeNull();
    expect(h!.deadLetters(searchQueries)).toEqual([]);
  });

  it('rides out a cluster outage (connection resets, then 503s) without losing a record', async () => {
    const proxy = await FlakyProxy.start('reset');
    const flaky = testClient(proxy.url, 2000);
    try {
      await start(batchedSearcher(flaky, options({ timeoutMs: 2000 }), { maxBatch: 64, maxWaitMs: 2 }));
      await send(...Array.from({ length: 20 }, (_, i) => query(`o${i}`, i % 2 ? 'zanzibar' : 'quokka plush')));
      await waitFor(() => proxy.connections >= 3, 'retries against the downed cluster');
      proxy.mode = 'unavailable';
      const seen = proxy.connections;
      await waitFor(() => proxy.connections >= seen + 2, 'retries against the unavailable cluster');
      expect(await h!.produced(topResults)).toEqual([]);
      proxy.mode = 'forward';
      await h!.settle(30_000);
      const byId = await results();
      expect(byId.size).toBe(20);
      for (const [id, r] of byId) expect(r.topResult?.id).toBe(Number(id.slice(1)) % 2 ? 'special-1' : 'special-2');
      expect(h!.deadLetters(searchQueries)).toEqual([]);
    } finally {
      await h?.stop();
      h = undefined;
      await flaky.close();
      await proxy.close();
    }
  });
});
