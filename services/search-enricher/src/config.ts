import { defineService } from '@stream/core';
import { z } from 'zod';
import { parseFields } from './query.js';

/** An index name, alias or wildcard pattern (lower case; no commas, spaces or remote-cluster prefixes). */
const indexName = z
  .string({ error: 'required: the index (or alias) to search' })
  .regex(/^[a-z0-9*][a-z0-9._*+-]{0,254}$/, 'expected a lower-case index name, alias or pattern');

/** `title^2,body`: field names with optional boosts, parsed into the list multi_match takes. */
const fields = z.string({ error: 'required: comma-separated fields, e.g. title^2,body' }).transform((s, ctx) => {
  try {
    return parseFields(s);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const secret = z.string().min(1, 'must not be empty when set').optional();

/**
 * search-enricher's own environment; KAFKA_*, OPS_* and LOG_LEVEL come with every service (see `defineService`).
 * Credentials are optional and never logged (configuration errors never echo values).
 */
export const SearchEnricherConfig = z
  .object({
    ELASTICSEARCH_URL: z.url({ protocol: /^https?$/, error: 'expected http(s)://host:port' }),
    ELASTICSEARCH_API_KEY: secret,
    ELASTICSEARCH_USERNAME: secret,
    ELASTICSEARCH_PASSWORD: secret,
    SEARCH_INDEX: indexName,
    SEARCH_FIELDS: fields,
    /** Longer user input is cut to this many characters before it is searched. */
    SEARCH_MAX_QUERY_CHARS: z.coerce.number().int().min(1).max(100_000).default(1000),
    /** Timeout of one search (or msearch) request. */
    SEARCH_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(2000),
    /** Records in flight at once: also the most searches one msearch can gather. */
    SEARCH_CONCURRENCY: z.coerce.number().int().min(1).max(4096).default(64),
    /** Most searches sent in one msearch; 1 turns batching off. */
    SEARCH_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(64),
    /** How long the first search of a batch waits for others to join it. */
    SEARCH_BATCH_WAIT_MS: z.coerce.number().int().min(0).max(1000).default(2),
  })
  .superRefine((c, ctx) => {
    const basic = c.ELASTICSEARCH_USERNAME !== undefined || c.ELASTICSEARCH_PASSWORD !== undefined;
    if (c.ELASTICSEARCH_USERNAME === undefined && c.ELASTICSEARCH_PASSWORD !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['ELASTICSEARCH_USERNAME'], message: 'required when ELASTICSEARCH_PASSWORD is set' });
    }
    if (c.ELASTICSEARCH_PASSWORD === undefined && c.ELASTICSEARCH_USERNAME !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['ELASTICSEARCH_PASSWORD'], message: 'required when ELASTICSEARCH_USERNAME is set' });
    }
    if (basic && c.ELASTICSEARCH_API_KEY !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['ELASTICSEARCH_API_KEY'], message: 'give either an API key or a username and password, not both' });
    }
  });

/** The search-enricher service: its id and its own variables. */
export const searchEnricherService = defineService('search-enricher', SearchEnricherConfig);
export type SearchEnricherConfig = ReturnType<typeof searchEnricherService.readConfig>;

/** Reads and checks the environment once; throws naming every bad variable (never its value). */
export function readConfig(env: NodeJS.ProcessEnv = process.env): SearchEnricherConfig {
  return searchEnricherService.readConfig(env);
}
