import { describe, expect, it } from 'vitest';
import { settlesWithin, untilAborted } from './abort.js';

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

describe('settlesWithin', () => {
  it('is true when the promise fulfils or rejects in time, false when the time passes first', async () => {
    expect(await settlesWithin(Promise.resolve(1), 50)).toBe(true);
    expect(await settlesWithin(Promise.reject(new Error('no')), 50)).toBe(true);
    expect(await settlesWithin(new Promise(() => undefined), 20)).toBe(false);
  });
});
