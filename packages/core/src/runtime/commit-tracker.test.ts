import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommitTracker } from './commit-tracker.js';

describe('CommitTracker', () => {
  it('commits nothing until the first offset is done', () => {
    const t = new CommitTracker();
    t.track(5);
    t.track(6);
    t.complete(6);
    expect(t.takeCommit()).toBeUndefined();
    t.complete(5);
    expect(t.takeCommit()).toBe(7);
    expect(t.takeCommit()).toBeUndefined();
  });

  it('treats gaps in offsets (transaction markers, compaction) as contiguous in delivery order', () => {
    const t = new CommitTracker();
    for (const o of [10, 12, 15]) t.track(o);
    t.complete(12);
    t.complete(10);
    expect(t.takeCommit()).toBe(13);
    t.complete(15);
    expect(t.takeCommit()).toBe(16);
    expect(t.pending).toBe(0);
  });

  it('refuses offsets out of order and completions of unknown offsets', () => {
    const t = new CommitTracker();
    t.track(3);
    expect(() => t.track(3)).toThrow(/tracked after/);
    expect(() => t.complete(4)).toThrow(/never tracked/);
  });

  it('never offers an offset past a record that is not done (random completion order)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.infiniteStream(fc.nat()),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (gaps, start, picks, failureRate) => {
          const offsets: number[] = [];
          let o = start;
          for (const gap of gaps) offsets.push((o += gap));
          const t = new CommitTracker();
          offsets.forEach((x) => t.track(x));
          const done = new Set<number>();
          // Some records fail for good and are never completed: nothing at or past them may be committed.
          const pickIterator = picks[Symbol.iterator]();
          const failed = new Set(offsets.filter(() => (pickIterator.next().value as number) % 1000 < failureRate * 1000));
          const remaining = offsets.filter((x) => !failed.has(x));
          let lastCommit = -Infinity;
          while (remaining.length > 0) {
            const index = (pickIterator.next().value as number) % remaining.length;
            const [offset] = remaining.splice(index, 1);
            t.complete(offset!);
            done.add(offset!);
            const commit = t.takeCommit();
            const firstNotDone = offsets.find((x) => !done.has(x));
            const expected = firstNotDone === undefined ? offsets.at(-1)! + 1 : offsets[offsets.indexOf(firstNotDone) - 1];
            const expectedCommit = firstNotDone === undefined ? expected : expected === undefined ? undefined : expected + 1;
            if (commit !== undefined) {
              expect(commit).toBeGreaterThan(lastCommit);
              lastCommit = commit;
            }
            if (expectedCommit !== undefined) expect(lastCommit).toBe(expectedCommit);
            if (firstNotDone !== undefined) expect(lastCommit).toBeLessThanOrEqual(firstNotDone);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps memory proportional to what is pending', () => {
    const t = new CommitTracker();
    for (let i = 0; i < 100_000; i += 1) {
      t.track(i);
      t.complete(i);
    }
    expect(t.pending).toBe(0);
    expect(t.takeCommit()).toBe(100_000);
  });
});
