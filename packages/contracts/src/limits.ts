import { z } from 'zod';

/**
 * What every contract accepts, in one place. A record outside these bounds is refused before it is sent
 * and dead-lettered when it is consumed, instead of reaching a service that cannot handle it (a header it
 * cannot write, a Flux time range InfluxDB answers 500 to, a number that overflows).
 */
export const LIMITS = {
  /** Longest id (order, activity, query id) and user id, in UTF-16 code units. */
  idLength: 200,
  /** Longest ticker symbol. */
  symbolLength: 32,
  /** Longest feed message. */
  messageLength: 10_000,
  /** Longest search text. */
  queryLength: 100_000,
  /** Longest Elasticsearch document id and index name of a search hit (Elasticsearch allows 512 bytes and 255). */
  hitIdLength: 512,
  hitIndexLength: 255,
  /** Largest order quantity (shares) and price (per share): both must also be > 0 and finite. */
  maxQuantity: 1e9,
  maxPrice: 1e9,
  /** Longest search time a result may report (one day). */
  maxTookMs: 86_400_000,
} as const;

/**
 * The window of every point in time, both ends included: from the Unix epoch to 2262-04-11T00:00:00Z, what
 * InfluxDB's int64 nanoseconds (up to 2262-04-11T23:47:16.854775807Z) and a JavaScript `Date` both represent,
 * with a margin left for the look-back windows and `+1 ns` bounds a service computes around it.
 */
export const DATE_WINDOW = { min: new Date('1970-01-01T00:00:00.000Z'), max: new Date('2262-04-11T00:00:00.000Z') } as const;

/**
 * True when `s` is well-formed UTF-16 (no lone surrogate). A lone surrogate cannot be encoded as UTF-8: Kafka
 * headers, Redis keys, HTTP and Elasticsearch would all turn it into U+FFFD, so two different ids would become
 * the same one. (In `u` mode a surrogate pair is one code point, so `\p{Cs}` matches only a lone half:
 * `String.prototype.isWellFormed` without the ES2024 lib.)
 */
const LONE_SURROGATE = /\p{Cs}/u;
const wellFormed = (s: string) => !LONE_SURROGATE.test(s);

/**
 * Free text of at most `max` code units (`min` at least): any well-formed Unicode, control characters and
 * all. Whoever puts it somewhere with rules of its own (a header, a URL, a query language) encodes it there.
 */
export function text(max: number, min = 0) {
  return z.string().min(min).max(max).refine(wellFormed, { message: 'must be well-formed Unicode (no lone surrogate)' });
}

/**
 * An id used as a key (the Kafka key, a Redis key, the email API's Idempotency-Key, a feed's URL): 1 to
 * {@link LIMITS.idLength} code units of well-formed Unicode. Control characters, spaces, `/`, CJK and emoji
 * are all allowed: a consumer that needs a restricted alphabet encodes the id (order-emailer percent-encodes
 * it into its Idempotency-Key), it never relies on the id being tame.
 */
export function identifier() {
  return text(LIMITS.idLength, 1);
}

/** A price per share: > 0, finite, at most {@link LIMITS.maxPrice}. */
export function price() {
  return z.number().positive().max(LIMITS.maxPrice);
}

/** A number of shares: > 0, finite, at most {@link LIMITS.maxQuantity}. */
export function quantity() {
  return z.number().positive().max(LIMITS.maxQuantity);
}
