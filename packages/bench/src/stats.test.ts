import { describe, expect, it } from 'vitest';
import { median, percentileOfSorted, percentiles, ratio } from './stats.js';

describe('stats', () => {
  it('nearest-rank percentiles', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentileOfSorted(sorted, 50)).toBe(50);
    expect(percentileOfSorted(sorted, 99)).toBe(99);
    expect(percentileOfSorted(sorted, 100)).toBe(100);
    expect(percentileOfSorted(sorted, 0)).toBe(1);
    expect(percentileOfSorted(new Float64Array(0), 50)).toBeNaN();
    expect(percentiles([5, 1, 3], 3, [50, 99])).toEqual({ p50: 3, p99: 5 });
  });

  it('median and ratio', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([Number.NaN, 7])).toBe(7);
    expect(median([])).toBeNaN();
    expect(ratio(1, 4)).toBe(0.25);
    expect(ratio(1, 0)).toBeNaN();
  });
});
