import { describe, expect, it } from 'vitest';
import { getEventListeners } from 'node:events';
import { settlesWithin, untilAborted, whenAborted } from './abort.js';

describe('untilAborted', () => {
  it('follows the promise while the signal stays quiet', async () => {
    await expect(untilAborted(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(untilAborted(Promise.reject(new Error('no')), undefined)).rejects.toThrow('no');
  });

  it('rejects with the reason as soon as the signal aborts, and at once when it already has', async () => {
    const controller = new AbortController();
    const pending = untilAborted(new Promise(() => undefined), controller.signal);
    controller.abort(new Error('revoked'));
    await expect(pending).rejects.toThrow('revoked');
    await expect(untilAborted(Promise.resolve(1), controller.signal)).rejects.toThrow('revoked');
  });
});

describe('whenAborted', () => {
  it('shares one event listener per signal among any number of waiters, each called once or not at all once stopped', async () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const stops = Array.from({ length: 1000 }, (_, i) => whenAborted(controller.signal, (reason) => calls.push(`${i}:${reason.message}`)));
    // Waiting records come and go (untilAborted settles, a stream record is done): their listeners go too.
    for (const stop of stops.slice(0, 998)) stop();
    const waiting = untilAborted(new Promise(() => undefined), controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('revoked'));
    expect(calls).toEqual(['998:revoked', '999:revoked']);
    await expect(waiting).rejects.toThrow('revoked');
  });
});

describe('settlesWithin', () => {
  it('is true when the promise fulfils or rejects in time, false when the time passes first', async () => {
    expect(await settlesWithin(Promise.resolve(1), 50)).toBe(true);
    expect(await settlesWithin(Promise.reject(new Error('no')), 50)).toBe(true);
    expect(await settlesWithin(new Promise(() => undefined), 20)).toBe(false);
  });
});
