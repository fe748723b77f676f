import type { searchQueries, SearchQuery, topResults, TopResult } from '@stream/contracts';
import { classifyFailure, type App, type Classifier, type RetryOptions } from '@stream/core';
import { RetryableSearchError } from './es-errors.js';
import type { TopHitSearcher } from './searcher.js';

/** The enriched query: every field of the query, its best hit (or null) and how long the search took. */
export async function enrich(query: SearchQuery, searcher: TopHitSearcher, signal?: AbortSignal): Promise<TopResult> {
  const { hit, tookMs } = await searcher.top(query.queryString, signal);
  return { ...query, topResult: hit, tookMs };
}

export interface EnricherOptions {
  /** Records in flight at once (each waits for its search; concurrent searches share an msearch). */
  readonly concurrency?: number;
  /** Default: 5 attempts for a query's own failures, 200 ms doubling to 10 s (outages wait without limit). */
  readonly retry?: RetryOptions;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, backoff: { initialMs: 200, maxMs: 10_000, multiplier: 2, jitter: 0.2 } };

/**
 * What es-errors calls retryable (cluster down, timeouts, 5xx/429, a missing index), and whatever the default
 * classification calls a dependency's fault, is Elasticsearch's: named `elasticsearch`, so the cluster check
 * (the `/readyz` one) decides whether a query that keeps failing is the query's fault.
 */
export const classifySearch: Classifier = (error) =>
  error instanceof RetryableSearchError || classifyFailure(error).kind === 'dependency' ? { kind: 'dependency', dependency: 'elasticsearch' } : undefined;

/**
 * Reads search queries, finds each one's best hit and publishes the enriched query keyed by query id.
 * Exactly-once: the output and the consumed offset commit in one Kafka transaction.
 * - no hit: `topResult: null`;
 * - cluster down, timeouts, 5xx/429, index missing: waited out (no new query starts until Elasticsearch
 *   answers, nothing is dead-lettered); a query that keeps failing while the cluster answers (its check
 *   passes, other queries succeed) is dead-lettered after 5 attempts;
 * - a query Elasticsearch rejects for good (400: text against a numeric field, …) and records that do not
 *   fit the contract: dead-lettered to `<input>.dlq` with the reason.
 */
export function searchEnricherAgent(
  app: App,
  input: typeof searchQueries,
  output: typeof topResults,
  searcher: TopHitSearcher,
  options: EnricherOptions = {},
): void {
  app.agent(
    input,
    {
      name: 'search-enricher',
      concurrency: options.concurrency ?? 64,
      exactlyOnce: true,
      retry: options.retry ?? DEFAULT_RETRY,
      classify: classifySearch,
    },
    async (query, ctx) => {
      const value = await enrich(query, searcher, ctx.signal);
      await ctx.send(output, { key: query.id, value });
    },
  );
}
