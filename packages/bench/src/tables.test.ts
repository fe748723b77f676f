import { describe, expect, it } from 'vitest';
import { countDifferences, countEntries, keyCounts } from './tables.js';

const spec = { records: 2_000, partitions: 6, keys: 50, seed: 5 };

describe('the counting table of a data set', () => {
  it('writes one entry per record, each its key count so far, ending at the key counts', () => {
    const entries = [...countEntries(spec)];
    expect(entries).toHaveLength(spec.records);
    expect(entries.map((e) => e.source)).toEqual(entries.map((_, i) => i));
    const counts = keyCounts(spec);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(spec.records);
    const last = new Map(entries.map((e) => [e.key, e.value]));
    expect(last).toEqual(counts);
  });

  it('names the keys whose count differs', () => {
    const expected = keyCounts(spec);
    expect(countDifferences(new Map(expected), expected)).toEqual([]);
    const [key, count] = [...expected][0]!;
    const actual = new Map(expected).set(key, count - 1).set('stranger', 1);
    expect(countDifferences(actual, expected)).toEqual([
      `2 of ${expected.size} keys wrong (${key}: ${count - 1} instead of ${count}, stranger: not in the input)`,
    ]);
  });
});
