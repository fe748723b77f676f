/**
 * Times as InfluxDB stores them: integer nanoseconds since the epoch, as bigint. A JavaScript `Date` only
 * has milliseconds, and market data may carry sub-millisecond timestamps, so every comparison between an
 * order's execution time and a market data point happens in nanoseconds.
 */
export const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/** Floor division, correct for negative numbers too (times before 1970). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

export function dateToNanos(date: Date): bigint {
  return BigInt(date.getTime()) * NS_PER_MS;
}

/** Truncates to the millisecond (a `Date` holds no more). */
export function nanosToDate(ns: bigint): Date {
  return new Date(Number(floorDiv(ns, NS_PER_MS)));
}

/** RFC 3339 in UTC with all nine fraction digits: `2026-01-01T00:00:00.000000001Z`. */
export function formatNanos(ns: bigint): string {
  const seconds = floorDiv(ns, NS_PER_S);
  const fraction = ns - seconds * NS_PER_S;
  const whole = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return `${whole}.${fraction.toString().padStart(9, '0')}Z`;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

/** Parses an RFC 3339 time as Flux writes it (`_time` column), keeping every nanosecond. */
export function parseNanos(text: string): bigint {
  const match = RFC3339.exec(text);
  const seconds = match ? Date.parse(`${match[1]}${match[3]}`) : Number.NaN;
  if (!match || Number.isNaN(seconds)) throw new Error(`not an RFC 3339 time: ${JSON.stringify(text)}`);
  return BigInt(seconds) * NS_PER_MS + BigInt((match[2] ?? '').padEnd(9, '0'));
}
