import { describe, expect, it } from 'vitest';
import { buildTopHitSearch, parseFields, truncateQuery } from './query.js';

const options = { fields: ['title^2', 'body'], maxQueryChars: 1000 };

/** The body with the user's text blanked out: every key and every other value. */
function shape(body: ReturnType<typeof buildTopHitSearch>): unknown {
  return { ...body, query: { multi_match: { ...body.query?.multi_match, query: '<user text>' } } };
}

describe('buildTopHitSearch', () => {
  it('asks for the single best hit of a multi_match over the configured fields', () => {
    expect(buildTopHitSearch('red lamp', options)).toEqual({
      size: 1,
      track_total_hits: false,
      query: {
        multi_match: { query: 'red lamp', fields: ['title^2', 'body'], type: 'best_fields', operator: 'or', zero_terms_query: 'none', lenient: false },
      },
    });
  });

  it.each([
    '*:*',
    'title:x OR 1=1',
    '{"query":{"match_all":{}}}',
    '"} }, "query": { "match_all": {} }, "x": {"',
    'title:(a OR b) AND body:[* TO *]',
    '\\" \u0000 \ud83d\ude00 <script>',
  ])('keeps %j as the plain text value of multi_match.query and nowhere else', (hostile) => {
    const body = buildTopHitSearch(hostile, options);
    expect(body.query?.multi_match?.query).toBe(hostile);
    // Same shape as for harmless text: the input adds no key, no clause, no other string anywhere.
    expect(shape(body)).toEqual(shape(buildTopHitSearch('plain words', options)));
    expect(JSON.stringify(shape(body))).not.toMatch(/query_string|simple_query_string|match_all|script/);
    // The text is one JSON string value: parsing the body back gives the same object, not new structure.
    expect(JSON.parse(JSON.stringify(body))).toEqual(body);
  });

  it('truncates user text to maxQueryChars', () => {
    const body = buildTopHitSearch('a'.repeat(10_000), { fields: ['title'], maxQueryChars: 1000 });
    expect(body.query?.multi_match?.query).toHaveLength(1000);
  });

  it('copies the field list (callers cannot mutate a built query)', () => {
    const fields = ['title'];
    const body = buildTopHitSearch('x', { fields, maxQueryChars: 10 });
    fields.push('body');
    expect(body.query?.multi_match?.fields).toEqual(['title']);
  });
});

describe('truncateQuery', () => {
  it('leaves short text alone and cuts long text', () => {
    expect(truncateQuery('hello', 5)).toBe('hello');
    expect(truncateQuery('hello world', 5)).toBe('hello');
  });

  it('never leaves half a surrogate pair', () => {
    const text = `abcd${'\ud83d\ude00'}efg`;
    expect(truncateQuery(text, 5)).toBe('abcd');
    expect(truncateQuery(text, 6)).toBe('abcd\ud83d\ude00');
  });
});

describe('parseFields', () => {
  it('parses names with optional boosts', () => {
    expect(parseFields('title^2, body ,brand.raw,name.*,tags^1.5')).toEqual(['title^2', 'body', 'brand.raw', 'name.*', 'tags^1.5']);
  });

  it.each(['', ' , ', 'title^', 'title^x', 'ti tle', 'title:x', 'a"b', 'title^2^3'])('rejects %j', (spec) => {
    expect(() => parseFields(spec)).toThrow();
  });
});
