/**
 * The address an instance advertises to its group for table queries (its ops server's), how it travels in
 * the consumer group (the member's `memberInfo`) and how another instance reads it back.
 */
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { StreamError } from '../errors.js';

/** The longest advertised address accepted: it travels in every JoinGroup (see MAX_MEMBER_INFO_BYTES). */
const MAX_URL_LENGTH = 512;

/**
 * Why `url` cannot be advertised, or undefined when it can: an absolute `http:` or `https:` URL, without
 * credentials (they would reach every member of the group and every client's redirect), query or fragment,
 * at most 512 characters. A path is kept as a prefix (a proxy's route). The URL itself is never echoed.
 */
export function advertisedUrlProblem(url: string): string | undefined {
  if (url.length === 0 || url.length > MAX_URL_LENGTH) return `expected an http(s) URL of 1 to ${MAX_URL_LENGTH} characters`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'expected an absolute http(s) URL, e.g. http://orders-2.orders:9464';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'expected an http: or https: URL';
  if (parsed.username !== '' || parsed.password !== '')
    return 'must not carry credentials (user:password@): every member of the group and every redirected client would see them';
  if (parsed.search !== '' || parsed.hash !== '') return 'must not have a query or a fragment';
  return undefined;
}

/** `url` checked (CONFIG_INVALID naming `where`, never the URL) and without its trailing slashes. */
export function checkAdvertisedUrl(url: string, where: string): string {
  const problem = advertisedUrlProblem(url);
  if (problem !== undefined) throw new StreamError('CONFIG_INVALID', `${where}: advertisedUrl ${problem}`);
  return new URL(url).href.replace(/\/+$/, '');
}

/**
 * The address an ops server bound to `host`:`port` advertises by default: `http://<host>:<port>`, with the
 * machine's host name for a wildcard bind (`0.0.0.0`, `::`), which no other machine can reach.
 *
 * @example defaultAdvertisedUrl('0.0.0.0', 9464) // 'http://orders-7f9c:9464' in a container named orders-7f9c
 */
export function defaultAdvertisedUrl(host: string, port: number): string {
  const wildcard = host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
  const name = wildcard ? hostname() : host;
  return `http://${isIP(name) === 6 ? `[${name}]` : name}:${port}`;
}

/** The `memberInfo` an instance advertising `url` publishes to its group: JSON, so more fields can follow. */
export function memberInfoOf(url: string | undefined): string | undefined {
  return url === undefined ? undefined : JSON.stringify({ url });
}

/**
 * The address another member published, or undefined: none, not ours (another client's userData), or not
 * an acceptable URL (a member cannot make us redirect a client to a `javascript:` URL or to credentials).
 */
export function advertisedUrlOf(memberInfo: string | undefined): string | undefined {
  if (memberInfo === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(memberInfo);
  } catch {
    return undefined;
  }
  const url = typeof parsed === 'object' && parsed !== null ? (parsed as { url?: unknown }).url : undefined;
  if (typeof url !== 'string' || advertisedUrlProblem(url) !== undefined) return undefined;
  return new URL(url).href.replace(/\/+$/, '');
}
