import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from './retry-after.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('1', 60_000, now)).toBe(1000);
    expect(parseRetryAfter(' 0 ', 60_000, now)).toBe(0);
    expect(parseRetryAfter(['2', '5'], 60_000, now)).toBe(2000);
  });

  it('reads an HTTP-date, a past one meaning now', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', 60_000, now)).toBe(3000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', 60_000, now)).toBe(0);
  });

  it('is bounded by maxMs', () => {
    expect(parseRetryAfter('3600', 60_000, now)).toBe(60_000);
    expect(parseRetryAfter('Fri, 02 Jan 2026 00:00:00 GMT', 5000, now)).toBe(5000);
  });

  it('ignores what it cannot read', () => {
    for (const value of [undefined, '', 'soon', '-5', '1.5', '2026-01-01T00:00:05Z', 'Xyz, not a date']) {
      expect(parseRetryAfter(value, 60_000, now)).toBeUndefined();
    }
  });
});
