import { defineTopic } from '@stream/core';
import { z } from 'zod';
import { isoDate } from './dates.js';
import { identifier, LIMITS, text } from './limits.js';

/** A user's search. Keyed by query id. */
export const SearchQuery = z.object({
  id: identifier(),
  /** Free text from the user: only ever searched as text, never parsed as query syntax. */
  queryString: text(LIMITS.queryLength),
  userId: identifier(),
  timestamp: isoDate(),
});
export type SearchQuery = z.output<typeof SearchQuery>;

/** `search_queries`: searches keyed by query id. */
export const searchQueries = defineTopic({ name: 'search_queries', key: identifier(), value: SearchQuery, partitions: 6 });

/** The best hit for a query. */
export const SearchHit = z.object({
  id: text(LIMITS.hitIdLength),
  index: text(LIMITS.hitIndexLength),
  score: z.number().nullable(),
  source: z.record(z.string(), z.unknown()),
});
export type SearchHit = z.output<typeof SearchHit>;

/** A search query with its top hit (null when nothing matched) and how long the search took. */
export const TopResult = SearchQuery.extend({
  topResult: SearchHit.nullable(),
  tookMs: z.number().nonnegative().max(LIMITS.maxTookMs),
});
export type TopResult = z.output<typeof TopResult>;

/** `top_results`: enriched queries keyed by query id. */
export const topResults = defineTopic({ name: 'top_results', key: identifier(), value: TopResult, partitions: 6 });
