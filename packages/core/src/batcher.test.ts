import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.js';

describe('Batcher', () => {
  it('coalesces concurrent loads into batches of at most maxBatch, results in order', async () => {
    const calls: number[][] = [];
    const b = new Batcher(async (xs: number[]) => {
      calls.push(xs);
      return xs.map((x) => x * 10);
    }, { maxBatch: 4, maxWaitMs: 5 });
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((x) => b.load(x)));
    expect(results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(calls).toEqual([[1, 2, 3, 4], [5, 6]]);
  });

  it('rejects every item of a failed batch, and only those', async () => {
    let first = true;
    const b = new Batcher(async (xs: string[]) => {
      if (first) {
        first = false;
        throw new Error('server down');
      }
      return xs;
    }, { maxBatch: 2, maxWaitMs: 1 });
    const outcomes = await Promise.allSettled(['a', 'b', 'c'].map((x) => b.load(x)));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
  });

  it('refuses a batch function that returns the wrong number of results', async () => {
    const b = new Batcher(async () => [1], { maxWaitMs: 0 });
    await expect(Promise.all([b.load(1), b.load(2)])).rejects.toThrow(/returned 1 results for 2 items/);
  });
});
