import { z } from 'zod';
import { DATE_WINDOW } from './limits.js';

const inWindow = z
  .date()
  .min(DATE_WINDOW.min, { message: `must be at or after ${DATE_WINDOW.min.toISOString()}` })
  .max(DATE_WINDOW.max, { message: `must be at or before ${DATE_WINDOW.max.toISOString()}` });

/**
 * A point in time: a `Date` in code, an ISO-8601 string with a zone (`Z` or `+02:00`) on the wire.
 * Decoding revives the string into a `Date` (Faust's `isodates`); anything else (numbers, `null`, dates
 * without a zone) is rejected rather than guessed at, and so is a time outside {@link DATE_WINDOW}
 * (1970-01-01 to 2262-04-11, what InfluxDB's int64 nanoseconds and a `Date` both represent): year 0000
 * would become a negative year in a Flux range, which InfluxDB answers with a 500.
 *
 * @example const Event = z.object({ at: isoDate() }); // z.input: Date | string, z.output: Date
 */
export function isoDate() {
  return z.union([z.date(), z.iso.datetime({ offset: true }).transform((s) => new Date(s))]).pipe(inWindow);
}
