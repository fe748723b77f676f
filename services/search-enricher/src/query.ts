import type { estypes } from '@elastic/elasticsearch';

/** A field name with an optional boost, as multi_match takes it: `title^2`, `body`, `name.*`. */
const FIELD = /^[A-Za-z0-9_@*][A-Za-z0-9_.@*-]{0,254}(\^\d{1,4}(\.\d{1,4})?)?$/;

/**
 * Parses `SEARCH_FIELDS` (`title^2,body`) into multi_match's field list. Operator configuration only,
 * never user input; still checked strictly so a typo fails at start rather than on every search.
 */
export function parseFields(spec: string): string[] {
  const fields = spec
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f.length > 0);
  if (fields.length === 0) throw new Error('expected at least one field, e.g. title^2,body');
  const bad = fields.filter((f) => !FIELD.test(f));
  if (bad.length > 0) throw new Error(`invalid field ${bad.map((f) => JSON.stringify(f)).join(', ')}: expected name or name^boost`);
  return fields;
}

/**
 * Cuts user text to at most `maxChars` UTF-16 code units without leaving half a surrogate pair behind
 * (which Elasticsearch would reject as malformed text).
 */
export function truncateQuery(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let cut = text.slice(0, maxChars);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut;
}

/** How the top-hit search is shaped: which fields, how much user text. */
export interface QueryOptions {
  readonly fields: readonly string[];
  readonly maxQueryChars: number;
}

/** The search body of {@link buildTopHitSearch}: a typed request body, never a string. */
export type TopHitSearch = estypes.SearchRequest & estypes.MsearchMultisearchBody;

/**
 * The search for the best hit of `userText`, built as objects: the text is only ever the `query` value
 * of a `multi_match`, which analyses it with the fields' analyzers as plain text. Nothing in it is parsed
 * as query syntax (no `query_string`/`simple_query_string`), so `*:*`, `title:x OR 1=1` or a JSON query
 * are searched for as the words they contain. Text that analyses to no terms matches nothing
 * (`zero_terms_query: 'none'`), and type errors (text against a numeric field) are errors, not silently
 * skipped (`lenient: false`).
 */
export function buildTopHitSearch(userText: string, options: QueryOptions): TopHitSearch {
  return {
    size: 1,
    track_total_hits: false,
    query: {
      multi_match: {
        query: truncateQuery(userText, options.maxQueryChars),
        fields: [...options.fields],
        type: 'best_fields',
        operator: 'or',
        zero_terms_query: 'none',
        lenient: false,
      },
    },
  };
}
