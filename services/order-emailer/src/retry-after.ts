/**
 * The delay a `Retry-After` header asks for, in ms, or undefined when it is missing or unreadable.
 * Both forms of RFC 9110 §10.2.3 are read: delay-seconds (`120`) and an HTTP-date
 * (`Wed, 21 Oct 2026 07:28:00 GMT`, a date in the past meaning "now"). The result is cut to `maxMs`.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, maxMs: number, now: number = Date.now()): number | undefined {
  const header = (Array.isArray(value) ? value[0] : value) as string | undefined;
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    // Only the HTTP-date shape (a weekday name first) is accepted: Date.parse alone reads too much.
    if (!/^[A-Za-z]{3,9},? /.test(text)) return undefined;
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(0, ms), Math.max(0, maxMs));
}
