import type { Logger } from '@stream/core';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import type { FeedStore } from './feed-store.js';

const FeedQuery = z.object({
  limit: z.coerce
    .number({ error: 'limit must be a number' })
    .int('limit must be an integer')
    .min(1, 'limit must be at least 1')
    .max(500, 'limit must be at most 500')
    .default(50),
  before: z.iso
    .datetime({ offset: true, error: 'before must be an ISO-8601 time with a zone, e.g. 2026-01-01T00:00:00Z' })
    .transform((s) => new Date(s))
    .optional(),
});

const USER = /^\/feed\/([^/]{1,200})$/;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
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

/**
 * `GET /feed/:user?limit=50&before=<ISO time>`: the user's newest activities first. Bad parameters get a
 * 400 saying what is wrong; unknown paths a plain 404; failures a 503 without internals (they are logged).
 */
export function createFeedServer(store: FeedStore, log: Logger): Server {
  return createServer((req, res) => {
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
      .then((items) => send(res, 200, { user, items }))
      .catch((error: unknown) => {
        log.error({ err: error, user }, 'feed read failed');
        send(res, 503, { error: 'feed temporarily unavailable' });
      });
  });
}
