import { describe, expect, it } from 'vitest';
import { PartitionState, type RunningEntry } from './partition.js';

function entry(agent: string, offset: number, since: number): RunningEntry & { since: number } {
  return { agent, offset, since, partitionPrev: undefined, partitionNext: undefined };
}

describe('PartitionState running records', () => {
  it('reports the oldest running record through starts, restarts and stops in any order, a second stop doing nothing', () => {
    const state = new PartitionState('orders', 0, 2);
    const a = entry('a', 1, 100);
    const b = entry('b', 1, 50);
    const c = entry('a', 2, 200);
    expect(state.oldestRunning()).toBeUndefined();
    state.started(a);
    state.started(b);
    state.started(c);
    expect(state.oldestRunning()).toBe(b);
    state.stopped(b);
    state.stopped(b);
    expect(state.oldestRunning()).toBe(a);
    // Restarted (after a wait): listed once, with its new start.
    a.since = 300;
    state.started(a);
    state.started(a);
    expect(state.oldestRunning()).toBe(c);
    state.stopped(c);
    expect(state.oldestRunning()).toBe(a);
    state.stopped(a);
    expect(state.oldestRunning()).toBeUndefined();
    // A stopped record never started here changes nothing.
    state.stopped(entry('a', 3, 0));
    state.started(b);
    expect(state.oldestRunning()).toBe(b);
  });
});
