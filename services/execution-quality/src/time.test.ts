import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dateToNanos, formatNanos, nanosToDate, parseNanos } from './time.js';

describe('nanosecond times', () => {
  it('formats with nine fraction digits and parses what Flux writes', () => {
    expect(formatNanos(1_767_225_600_000_000_001n)).toBe('2026-01-01T00:00:00.000000001Z');
    expect(parseNanos('2026-01-01T00:00:00.000000001Z')).toBe(1_767_225_600_000_000_001n);
    expect(parseNanos('2026-01-01T00:00:00Z')).toBe(1_767_225_600_000_000_000n);
    expect(parseNanos('2026-01-01T00:00:00.5Z')).toBe(1_767_225_600_500_000_000n);
    expect(parseNanos('2026-01-01T01:00:00.000001+01:00')).toBe(1_767_225_600_000_001_000n);
    expect(formatNanos(-1n)).toBe('1969-12-31T23:59:59.999999999Z');
    expect(nanosToDate(1_767_225_600_000_999_999n).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(dateToNanos(new Date('2026-01-01T00:00:00.001Z'))).toBe(1_767_225_600_001_000_000n);
  });

  it('rejects what is not an RFC 3339 time', () => {
    for (const bad of ['', '2026-01-01', '2026-01-01T00:00:00', 'yesterday', '2026-13-01T00:00:00Z']) expect(() => parseNanos(bad)).toThrow(/RFC 3339/);
  });

  it('round-trips any time between 1900 and 2200', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -2_208_988_800_000_000_000n, max: 7_258_118_400_000_000_000n }), (ns) => {
        expect(parseNanos(formatNanos(ns))).toBe(ns);
      }),
    );
  });
});
