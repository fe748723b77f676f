import type { Logger } from '@stream/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import type { FeedItem, FeedStore } from './feed-store.js';

/** Defaults of {@link FeedServerOptions}, the same as feed-cache's configuration's. */
export const FEED_SERVER_DEFAULTS = {
  maxLimit: 500,
  maxResponseBytes: 1024 * 1024,
  requestTimeoutMs: 10_000,
} as const;

export interface FeedServerOptions {
  /**
   * When set, every request must carry `Authorization: Bearer <token>` (compared in constant time); others get
   * a 401. Unset: no authentication (bind the API to loopback or a private network, see `HTTP_HOST`).
   */
  readonly token?: string;
  /** Largest `limit` a request may ask for; above it is a 400. Default 500. */
  readonly maxLimit?: number;
  /**
   * Largest response body, in bytes. Entries stop being added once the next one would pass it, and the answer
   * says `"truncated": true`: the client asks for the rest with `before=<timestamp of the last entry>`. Default 1 MiB.
   */
  readonly maxResponseBytes?: number;
  /** A request whose headers or whole request take longer than this is cut off (408). Default 10 s. */
  readonly requestTimeoutMs?: number;
}

const feedQuery = (maxLimit: number) =>
  z.object({
    limit: z.coerce
      .number({ error: 'limit must be a number' })
      .int('limit must be an integer')
      .min(1, 'limit must be at least 1')
      .max(maxLimit, `limit must be at most ${maxLimit}`)
      .default(Math.min(50, maxLimit)),
    before: z.iso
      .datetime({ offset: true, error: 'before must be an ISO-8601 time with a zone, e.g. 2026-01-01T00:00:00Z' })
      .transform((s) => new Date(s))
      .refine((d) => !Number.isNaN(d.getTime()), 'before must be a representable time')
      .optional(),
  });

const USER = /^\/feed\/([^/]{1,200})$/;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * The request target as a URL, or null when it is not one. The target is read as a path on this server:
 * `new URL('//', base)` would take `//…` for a host (and throw on `//[`), so the origin is put in front instead.
 */
function requestUrl(target: string | undefined): URL | null {
  if (target === undefined || !target.startsWith('/')) return null;
  return URL.parse(`http://localhost${target}`);
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Whether the request carries the bearer token. Both sides are hashed first, so `timingSafeEqual` compares
 * equal-length digests and neither the token's length nor its prefix shows in the time taken.
 */
function authorized(req: IncomingMessage, expected: Buffer): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer ([^\s]+)\s*$/i.exec(header);
  return timingSafeEqual(digest(match?.[1] ?? ''), expected) && match !== null;
}

/**
 * The body of a feed answer, at most `maxBytes` long: `{"user":…,"items":[…],"truncated":…}`, items added
 * newest first while the whole still fits.
 */
export function feedBody(user: string, items: readonly FeedItem[], maxBytes: number): string {
  const head = `{"user":${JSON.stringify(user)},"items":[`;
  const tail = (truncated: boolean) => `],"truncated":${truncated}}`;
  let bytes = Buffer.byteLength(head) + Buffer.byteLength(tail(false)); // the longer of the two tails
  const parts: string[] = [];
  let truncated = false;
  for (const item of items) {
    const json = JSON.stringify(item);
    const size = Buffer.byteLength(json) + (parts.length > 0 ? 1 : 0);
    if (bytes + size > maxBytes) {
      truncated = true;
      break;
    }
    parts.push(json);
    bytes += size;
  }
  return `${head}${parts.join(',')}${tail(truncated)}`;
}

/**
 * `GET /feed/:user?limit=50&before=<ISO time>`: the user's newest activities first, as
 * `{ user, items: [{ id, message, timestamp }], truncated }`. With a token, a request without it gets a 401 before
 * anything else is looked at. Bad parameters get a 400 saying what is wrong (a `limit` above `maxLimit`
 * included); a malformed target or encoding a 400; unknown paths a plain 404; failures a 503 without internals
 * (they are logged). The body never passes `maxResponseBytes` (see {@link FeedServerOptions}).
 */
export function createFeedServer(store: FeedStore, log: Logger, options: FeedServerOptions = {}): Server {
  const maxLimit = options.maxLimit ?? FEED_SERVER_DEFAULTS.maxLimit;
  const maxResponseBytes = options.maxResponseBytes ?? FEED_SERVER_DEFAULTS.maxResponseBytes;
  const requestTimeoutMs = options.requestTimeoutMs ?? FEED_SERVER_DEFAULTS.requestTimeoutMs;
  const expected = options.token === undefined ? undefined : digest(options.token);
  const FeedQuery = feedQuery(maxLimit);
  const server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: requestTimeoutMs,
      // How often Node looks for requests past their timeouts (default 30 s): a fraction of the timeout.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(requestTimeoutMs / 4))),
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => {
      if (expected !== undefined && !authorized(req, expected)) {
        return send(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer realm="feed"' });
      }
      const url = requestUrl(req.url);
      if (!url) return send(res, 400, { error: 'malformed request target' });
      const match = USER.exec(url.pathname);
      if (req.method !== 'GET' || !match) return send(res, 404, { error: 'not found' });
      let user: string;
      try {
        user = decodeURIComponent(match[1]!);
      } catch {
        return send(res, 400, { error: 'user must be URL-encoded UTF-8' });
      }
      const query = FeedQuery.safeParse(Object.fromEntries(url.searchParams));
      if (!query.success) return send(res, 400, { error: query.error.issues.map((i) => i.message).join('; ') });
      store
        .read(user, { limit: query.data.limit, ...(query.data.before ? { before: query.data.before } : {}) })
        .then((items) => {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
          res.end(feedBody(user, items, maxResponseBytes));
        })
        .catch((error: unknown) => {
          log.error({ err: error, user }, 'feed read failed');
          if (!res.headersSent) send(res, 503, { error: 'feed temporarily unavailable' });
        });
    },
  );
  // A request Node cannot parse (bad request line, header, encoding) or one past its timeout: a 4xx, logged at
  // debug, and the connection closed. Without this listener Node does the same but says nothing.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    log.debug({ code: error.code }, 'malformed or timed-out request');
    if (socket.writable && !socket.destroyed) {
      const status =
        error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : error.code === 'HPE_HEADER_OVERFLOW'
            ? '431 Request Header Fields Too Large'
            : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    } else socket.destroy();
  });
  // CONNECT and Upgrade requests bypass the request handler: without these listeners Node drops the connection.
  const refuse = (_req: IncomingMessage, socket: NodeJS.WritableStream & { destroyed?: boolean }) => {
    if (!socket.destroyed) socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  };
  server.on('connect', refuse);
  server.on('upgrade', refuse);
  return server;
}
