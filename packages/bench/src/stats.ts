/** Percentiles, medians and the other small statistics the runner reports. */

/**
 * The `p`-th percentile (0-100) of `sorted` (ascending), nearest-rank: the smallest value such that at
 * least `p` % of the values are at or below it. NaN for an empty array.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const clamped = Math.min(100, Math.max(0, p));
  const rank = Math.max(1, Math.ceil((clamped / 100) * n));
  return sorted[Math.min(n, rank) - 1] ?? Number.NaN;
}

/** Sorts a copy of the first `count` values and returns the requested percentiles, keyed by `p<n>`. */
export function percentiles(values: Float64Array | Float32Array | readonly number[], count: number, ps: readonly number[]): Record<string, number> {
  const n = Math.min(count, values.length);
  const sorted = Float64Array.from({ length: n }, (_, i) => values[i] ?? Number.NaN).sort();
  const out: Record<string, number> = {};
  for (const p of ps) out[`p${p}`] = percentileOfSorted(sorted, p);
  return out;
}

/** The median (mean of the two middle values for an even count). NaN for no values. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = finite.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

/** `a / b`, or NaN when either is not a positive finite number. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN;
}

/** Rounds to `digits` significant-looking decimals for the JSON and tables (keeps integers intact). */
export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Bytes to MiB. */
export function mb(bytes: number): number {
  return bytes / (1024 * 1024);
}
