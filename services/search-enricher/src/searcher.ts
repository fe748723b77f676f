import type { Client, estypes } from '@elastic/elasticsearch';
import type { SearchHit } from '@stream/contracts';
import { Batcher, toError, untilAborted } from '@stream/core';
import { classifyClientError, RetryableSearchError, searchError, shardFailureError } from './es-errors.js';
import { buildTopHitSearch, type QueryOptions } from './query.js';

/** The best hit of one search (null when nothing matched) and Elasticsearch's `took` for it. */
export interface TopHit {
  readonly hit: SearchHit | null;
  readonly tookMs: number;
}

/** Finds the best hit for a user's text. Rejects with a `NonRetryableError` or a `RetryableSearchError`. */
export interface TopHitSearcher {
  top(userText: string, signal?: AbortSignal): Promise<TopHit>;
}

/** Where and how to search. */
export interface SearcherOptions extends QueryOptions {
  readonly index: string;
  /** Timeout of one request (a search, or an msearch carrying a whole batch). */
  readonly timeoutMs: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The top hit of a search answer. An answer missing shards is an error, not a smaller result; so is an
 * answer from no shard at all (a wildcard pattern that matches no index yet): like a missing index, it is
 * retried rather than published as "no hit".
 */
export function topHitOf(response: Pick<estypes.SearchResponseBody, 'took' | 'hits' | '_shards'>): TopHit {
  if (response._shards.total === 0)
    throw new RetryableSearchError('elasticsearch searched no shard: the index pattern or alias matches no index yet', { type: 'no_shards' });
  if (response._shards.failed > 0) throw shardFailureError(response._shards);
  const first = response.hits.hits[0];
  if (!first) return { hit: null, tookMs: response.took };
  return {
    hit: { id: first._id ?? '', index: first._index, score: first._score ?? null, source: isRecord(first._source) ? first._source : {} },
    tookMs: response.took,
  };
}

/** One search per call: `client.search`. The reference that batched searching must agree with. */
export function singleSearcher(client: Client, options: SearcherOptions): TopHitSearcher {
  return {
    async top(userText, signal) {
      const body = buildTopHitSearch(userText, options);
      let response: estypes.SearchResponse;
      try {
        response = await client.search({ index: options.index, ...body }, { requestTimeout: options.timeoutMs, maxRetries: 0, ...(signal ? { signal } : {}) });
      } catch (error) {
        throw classifyClientError(error);
      }
      return topHitOf(response);
    },
  };
}

/** Each item of a batch ends in its own result or its own error. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: Error };

interface BatchItem {
  readonly userText: string;
  readonly signal: AbortSignal | undefined;
}

/**
 * A signal that aborts once every item of a batch has aborted: one record being revoked must not cancel
 * the search its neighbours in the batch still wait for, but a batch nobody waits for any more stops.
 */
function allAborted(signals: readonly (AbortSignal | undefined)[]): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  if (live.length < signals.length) return { signal: controller.signal, dispose: () => undefined };
  let remaining = live.filter((s) => !s.aborted).length;
  const onAbort = () => {
    remaining -= 1;
    if (remaining === 0) controller.abort(new Error('every search of the batch was aborted'));
  };
  for (const s of live) if (!s.aborted) s.addEventListener('abort', onAbort, { once: true });
  if (remaining === 0) controller.abort(new Error('every search of the batch was aborted'));
  return { signal: controller.signal, dispose: () => live.forEach((s) => s.removeEventListener('abort', onAbort)) };
}

/**
 * Runs several top-hit searches in one `msearch` round trip. Returns one outcome per text, in order: an
 * item Elasticsearch answered with an error (or without all its shards) fails alone, its neighbours keep
 * their hits. Throws only when the request as a whole failed (cluster down, timeout), which fails them all.
 */
export async function msearchTopHits(
  client: Client,
  options: SearcherOptions,
  userTexts: readonly string[],
  transport: { signal?: AbortSignal } = {},
): Promise<Outcome<TopHit>[]> {
  const searches: estypes.MsearchRequestItem[] = [];
  for (const text of userTexts) searches.push({}, buildTopHitSearch(text, options));
  let response: estypes.MsearchResponse;
  try {
    response = await client.msearch({ index: options.index, searches }, { requestTimeout: options.timeoutMs, maxRetries: 0, ...transport });
  } catch (error) {
    throw classifyClientError(error);
  }
  if (response.responses.length !== userTexts.length) {
    throw classifyClientError(new Error(`msearch answered ${response.responses.length} responses for ${userTexts.length} searches`));
  }
  return response.responses.map((item): Outcome<TopHit> => {
    if ('error' in item) return { ok: false, error: searchError(item.status, item.error) };
    try {
      return { ok: true, value: topHitOf(item) };
    } catch (error) {
      return { ok: false, error: classifyClientError(error) };
    }
  });
}

/** Batching of {@link batchedSearcher}. */
export interface BatchOptions {
  /** Most searches per msearch. */
  readonly maxBatch: number;
  /** How long the first search of a batch waits for others. */
  readonly maxWaitMs: number;
}

/**
 * Concurrent `top()` calls (one per record in flight) are gathered by a core {@link Batcher} into one
 * `msearch`. The batch function returns an outcome per item, so `top()` resolves or rejects per item with
 * exactly what a single search would have given; a record whose signal aborts stops waiting at once.
 */
export function batchedSearcher(client: Client, options: SearcherOptions, batch: BatchOptions): TopHitSearcher {
  const batcher = new Batcher<BatchItem, Outcome<TopHit>>(
    async (items) => {
      const { signal, dispose } = allAborted(items.map((i) => i.signal));
      try {
        return await msearchTopHits(
          client,
          options,
          items.map((i) => i.userText),
          { signal },
        );
      } finally {
        dispose();
      }
    },
    { maxBatch: batch.maxBatch, maxWaitMs: batch.maxWaitMs },
  );
  return {
    async top(userText, signal) {
      if (signal?.aborted) throw toError(signal.reason);
      const outcome = await untilAborted(batcher.load({ userText, signal }), signal);
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    },
  };
}
