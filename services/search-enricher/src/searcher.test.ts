import type { Client } from '@elastic/elasticsearch';
import { isNonRetryable, NonRetryableError } from '@stream/core';
import { requireServers, uniqueName } from '@stream/local-stack';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { corpusIndex, dropIndex, FlakyProxy, SPECIAL_DOCS, testClient, waitFor } from '../test/support.js';
import { corpusDocument } from './corpus.js';
import { clusterAnswers } from './elasticsearch.js';
import { RetryableSearchError } from './es-errors.js';
import { batchedSearcher, msearchTopHits, singleSearcher, type TopHit } from './searcher.js';

let client: Client;
let index: string;
const fields = ['title^2', 'body', 'tags'];
const opts = () => ({ index, fields, maxQueryChars: 1000, timeoutMs: 10_000 });

/** Queries of every kind: words of the corpus (one to four), their mixes, unknown words, hostile text. */
function queries(count: number): string[] {
  const out: string[] = [];
  for (let n = 0; out.length < count; n += 1) {
    const doc = corpusDocument(n * 7);
    const words = `${doc.title} ${doc.body}`.replace(/[.,]/g, '').split(' ');
    const pick = (i: number) => words[(n * 3 + i) % words.length]!;
    out.push([pick(0), pick(5)].join(' '), pick(n % 11), [pick(1), pick(2), pick(7), 'nonexistentword'].join(' '));
    if (n % 5 === 0) out.push(`nothing${n} matches${n}`, '*:*', `title:${pick(4)} OR 1=1`);
  }
  return out.slice(0, count);
}

const withoutTook = (t: TopHit) => t.hit;

describe('searching Elasticsearch for the top hit', () => {
  beforeAll(async () => {
    await requireServers('elasticsearch');
    client = testClient();
    index = await corpusIndex(client, 300);
  });
  afterAll(async () => {
    await dropIndex(client, index);
    await client.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('finds the best hit, or null when nothing matches', async () => {
    const search = singleSearcher(client, opts());
    const top = await search.top('zanzibar grinder');
    expect(top.hit).toEqual({ id: 'special-1', index, score: expect.any(Number) as number, source: SPECIAL_DOCS[0] });
    expect(top.hit!.score).toBeGreaterThan(0);
    expect(top.tookMs).toBeGreaterThanOrEqual(0);
    expect((await search.top('xylophone')).hit).toBeNull();
    expect((await search.top('')).hit).toBeNull();
  });

  it('honours the field boosts of SEARCH_FIELDS', async () => {
    // "quokka" is in special-2's title and in special-3's body.
    expect((await singleSearcher(client, { ...opts(), fields: ['title^5', 'body'] }).top('quokka')).hit?.id).toBe('special-2');
    expect((await singleSearcher(client, { ...opts(), fields: ['title', 'body^5'] }).top('quokka')).hit?.id).toBe('special-3');
  });

  it('batched msearch gives exactly what single searches give, in far fewer requests', async () => {
    const texts = queries(200);
    const single = singleSearcher(client, { ...opts(), timeoutMs: 60_000 });
    const expected: TopHit[] = [];
    for (let i = 0; i < texts.length; i += 8) expected.push(...(await Promise.all(texts.slice(i, i + 8).map((t) => single.top(t)))));
    expect(expected.filter((e) => e.hit === null).length).toBeGreaterThan(10);
    expect(expected.filter((e) => e.hit !== null).length).toBeGreaterThan(150);

    const msearch = vi.spyOn(client, 'msearch');
    const batched = batchedSearcher(client, { ...opts(), timeoutMs: 60_000 }, { maxBatch: 50, maxWaitMs: 5 });
    const actual = await Promise.all(texts.map((t) => batched.top(t)));
    expect(actual.map(withoutTook)).toEqual(expected.map(withoutTook));
    // 200 concurrent lookups, at most 50 per msearch: 4 requests.
    expect(msearch).toHaveBeenCalledTimes(4);
  });

  it('fails only the msearch items Elasticsearch rejected', async () => {
    // price is a double: "12.5" is a valid price query, "red lamp" never will be.
    const outcomes = await msearchTopHits(client, { ...opts(), fields: ['price'] }, ['12.5', 'red lamp', '99.99', '7']);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true, true]);
    expect(outcomes[0]).toMatchObject({ ok: true, value: { hit: { id: 'special-1' } } });
    expect(outcomes[2]).toMatchObject({ ok: true, value: { hit: { id: 'special-2' } } });
    const failed = outcomes[1]!;
    expect(failed.ok || failed.error).toBeInstanceOf(NonRetryableError);
    expect(failed.ok || failed.error.message).toMatch(/400: search_phase_execution_exception.*query_shard_exception.*number_format_exception/);

    // Through the batcher each record sees its own outcome.
    const batched = batchedSearcher(client, { ...opts(), fields: ['price'] }, { maxBatch: 10, maxWaitMs: 20 });
    const settled = await Promise.allSettled(['12.5', 'red lamp', '99.99'].map((t) => batched.top(t)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('a missing index (or a pattern matching none) is retryable, never a "no hit"', async () => {
    const missing = uniqueName('se-missing');
    for (const search of [
      singleSearcher(client, { ...opts(), index: missing }),
      batchedSearcher(client, { ...opts(), index: missing }, { maxBatch: 5, maxWaitMs: 1 }),
    ]) {
      const error = await search.top('lamp').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RetryableSearchError);
      expect((error as Error).message).toMatch(/404: index_not_found_exception/);
    }
    const pattern = await singleSearcher(client, { ...opts(), index: `${missing}-*` })
      .top('lamp')
      .catch((e: unknown) => e);
    expect(pattern).toBeInstanceOf(RetryableSearchError);
    expect(isNonRetryable(pattern)).toBe(false);
  });

  it('one aborted record stops waiting at once; its batch neighbours still get their hits', async () => {
    const msearch = vi.spyOn(client, 'msearch');
    const batched = batchedSearcher(client, opts(), { maxBatch: 10, maxWaitMs: 30 });
    const controller = new AbortController();
    const aborted = batched.top('zanzibar', controller.signal);
    const kept = batched.top('quokka plush', new AbortController().signal);
    controller.abort(new Error('partition revoked'));
    await expect(aborted).rejects.toThrow('partition revoked');
    expect((await kept).hit?.id).toBe('special-2');
    expect(msearch).toHaveBeenCalledTimes(1);
    expect((msearch.mock.calls[0]![0] as { searches: unknown[] }).searches).toHaveLength(4);
  });
});

describe('an unreachable, unavailable or hanging cluster', () => {
  let proxy: FlakyProxy | undefined;
  let flaky: Client | undefined;
  beforeAll(() => requireServers('elasticsearch'));
  afterEach(async () => {
    await flaky?.close();
    await proxy?.close();
  });

  async function through(mode: 'reset' | 'unavailable' | 'hang', timeoutMs = 10_000) {
    proxy = await FlakyProxy.start(mode);
    flaky = testClient(proxy.url, timeoutMs);
    return { proxy, client: flaky, options: { index: 'any', fields, maxQueryChars: 1000, timeoutMs } };
  }

  it('readiness: the cluster answers a health request, or not', async () => {
    const real = testClient();
    try {
      expect(await clusterAnswers(real)).toBe(true);
    } finally {
      await real.close();
    }
    const t = await through('reset');
    await expect(clusterAnswers(t.client, 500)).rejects.toThrow();
  });

  it('connection failures are retryable', async () => {
    const t = await through('reset');
    await expect(singleSearcher(t.client, t.options).top('lamp')).rejects.toThrow(RetryableSearchError);
    await expect(batchedSearcher(t.client, t.options, { maxBatch: 5, maxWaitMs: 1 }).top('lamp')).rejects.toThrow(/elasticsearch unavailable: ConnectionError/);
  });

  it('503 answers are retryable', async () => {
    const t = await through('unavailable');
    await expect(singleSearcher(t.client, t.options).top('lamp')).rejects.toThrow(/elasticsearch answered 503/);
  });

  it('a request that does not answer within SEARCH_TIMEOUT_MS fails retryably', async () => {
    const t = await through('hang', 300);
    const started = Date.now();
    await expect(singleSearcher(t.client, t.options).top('lamp')).rejects.toThrow(/elasticsearch unavailable: TimeoutError/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a batch is cancelled once every record waiting for it has aborted, not before', async () => {
    const t = await through('hang');
    const batched = batchedSearcher(t.client, t.options, { maxBatch: 10, maxWaitMs: 5 });
    const a = new AbortController();
    const b = new AbortController();
    const first = batched.top('lamp', a.signal).catch((e: unknown) => e);
    const second = batched.top('desk', b.signal).catch((e: unknown) => e);
    await waitFor(() => t.proxy.connections === 1, 'the msearch to reach the proxy');
    a.abort(new Error('revoked a'));
    expect(await first).toMatchObject({ message: 'revoked a' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(t.proxy.closedWhileHanging).toBe(0);
    b.abort(new Error('revoked b'));
    expect(await second).toMatchObject({ message: 'revoked b' });
    await waitFor(() => t.proxy.closedWhileHanging === 1, 'the msearch request to be cancelled');
  });
});
