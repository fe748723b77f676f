import { z } from 'zod';

/**
 * A point in time: a `Date` in code, an ISO-8601 string with a zone (`Z` or `+02:00`) on the wire.
 * Decoding revives the string into a `Date` (Faust's `isodates`); anything else (numbers, `null`, dates
 * without a zone) is rejected rather than guessed at.
 *
 * @example const Event = z.object({ at: isoDate() }); // z.input: Date | string, z.output: Date
 */
export function isoDate() {
  return z.union([z.date(), z.iso.datetime({ offset: true }).transform((s) => new Date(s))]);
}
