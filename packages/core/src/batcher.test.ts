import { describe, expect, it } from 'vitest';
import { Batcher, Coalescer } from './batcher.js';

describe('Batcher', () => {
  it('coalesces concurrent loads into batches of at most maxBatch, results in order', async () => {
    const calls: number[][] = [];
    const b = new Batcher(
      async (xs: number[]) => {
        calls.push(xs);
        return xs.map((x) => x * 10);
      },
      { maxBatch: 4, maxWaitMs: 5 },
    );
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((x) => b.load(x)));
    expect(results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(calls).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
  });

  it('rejects every item of a failed batch, and only those', async () => {
    let first = true;
    const b = new Batcher(
      async (xs: string[]) => {
        if (first) {
          first = false;
          throw new Error('server down');
        }
        return xs;
      },
      { maxBatch: 2, maxWaitMs: 1 },
    );
    const outcomes = await Promise.allSettled(['a', 'b', 'c'].map((x) => b.load(x)));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
  });

  it('refuses a batch function that returns the wrong number of results', async () => {
    const b = new Batcher(async () => [1], { maxWaitMs: 0 });
    await expect(Promise.all([b.load(1), b.load(2)])).rejects.toThrow(/returned 1 results for 2 items/);
  });
});

describe('Coalescer', () => {
  it('sends concurrent items in batches of at most maxBatch; each batch settles its own items', async () => {
    const calls: number[][] = [];
    const c = new Coalescer(
      async (xs: number[]) => {
        calls.push(xs);
        if (xs.includes(5)) throw new Error('batch with 5 failed');
      },
      { maxBatch: 4, maxWaitMs: 5 },
    );
    const outcomes = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((x) => c.add(x)));
    expect(calls).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(outcomes[4]).toMatchObject({ reason: new Error('batch with 5 failed') });
  });

  it('waits at most maxWaitMs for a batch to fill, and a later item starts a new batch', async () => {
    const calls: string[][] = [];
    const c = new Coalescer(async (xs: string[]) => void calls.push(xs), { maxBatch: 100, maxWaitMs: 2 });
    await c.add('a');
    await Promise.all([c.add('b'), c.add('c')]);
    expect(calls).toEqual([['a'], ['b', 'c']]);
  });

  it('never splits the items of one addAll over two batches: a group that does not fit closes the open batch, a larger one goes alone', async () => {
    const calls: number[][] = [];
    const c = new Coalescer(async (xs: number[]) => void calls.push(xs), { maxBatch: 4, maxWaitMs: 5 });
    await Promise.all([c.add(1), c.add(2), c.add(3), c.addAll([10, 11]), c.addAll([20, 21, 22, 23, 24, 25]), c.add(4)]);
    expect(calls).toEqual([[1, 2, 3], [10, 11], [20, 21, 22, 23, 24, 25], [4]]);
    // Nothing to send settles at once, without a batch.
    await c.addAll([]);
    expect(calls).toHaveLength(4);
  });

  it('with maxInFlight, a batch whose wait ran out keeps filling until a batch in flight settles, then goes whole', async () => {
    const calls: number[][] = [];
    const gates: (() => void)[] = [];
    const c = new Coalescer(
      (xs: number[]) => {
        calls.push(xs);
        return new Promise<void>((resolve) => gates.push(resolve));
      },
      { maxBatch: 100, maxWaitMs: 1, maxInFlight: 1 },
    );
    const first = c.add(1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).toEqual([[1]]);
    // The first batch is in flight: these wait past maxWaitMs and go together once it settles.
    const later = [c.add(2), c.add(3)];
    await new Promise((resolve) => setTimeout(resolve, 10));
    const more = c.add(4);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).toEqual([[1]]);
    gates.shift()!();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([[1], [2, 3, 4]]);
    gates.shift()!();
    await Promise.all([...later, more]);
    // Idle again: a lone item goes after maxWaitMs.
    const lone = c.add(5);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).toEqual([[1], [2, 3, 4], [5]]);
    gates.shift()!();
    await lone;
  });

  it('with maxInFlight, a full batch goes at once, and a failed batch frees its slot', async () => {
    const calls: number[][] = [];
    const c = new Coalescer(
      async (xs: number[]) => {
        calls.push(xs);
        if (xs.includes(1)) throw new Error('first failed');
      },
      { maxBatch: 2, maxWaitMs: 1, maxInFlight: 1 },
    );
    const outcomes = await Promise.allSettled([c.add(1), c.add(2), c.add(3), c.add(4), c.add(5)]);
    expect(calls).toEqual([[1, 2], [3, 4], [5]]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('rejects when the batch function throws synchronously', async () => {
    const c = new Coalescer(
      (): Promise<void> => {
        throw new Error('sync failure');
      },
      { maxBatch: 1 },
    );
    await expect(c.add(1)).rejects.toThrow('sync failure');
  });
});
