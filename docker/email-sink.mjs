#!/usr/bin/env node
// A stand-in for the email HTTP API that order-emailer POSTs confirmations to, for local stacks and checks.
// No dependencies: run it with any Node >= 18 (`node docker/email-sink.mjs`), or in node:24-bookworm-slim
// (docker/compose.yaml mounts this file).
//
//   POST <any path>   an email (JSON). 401 without `Authorization: Bearer $EMAIL_SINK_TOKEN` when that is
//                     set. A repeated `Idempotency-Key` is answered 200 with the first email's id and not
//                     stored again; a new one is stored and answered 202 {"id": ...}.
//   GET /sent         the stored emails, oldest first (the last 1000); ?key=<Idempotency-Key> filters.
//   GET /healthz      200
//
// Environment: PORT (default 8025), HOST (default 0.0.0.0), EMAIL_SINK_TOKEN (optional),
// EMAIL_SINK_FAIL_RATE (0..1, default 0: that share of new emails is answered 503 with Retry-After: 1,
// to watch the emailer's retries).
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8025);
const host = process.env.HOST ?? '0.0.0.0';
const token = process.env.EMAIL_SINK_TOKEN ?? '';
const failRate = Number(process.env.EMAIL_SINK_FAIL_RATE ?? 0);
const KEEP = 1000;

/** @type {Array<{ id: string; receivedAt: string; idempotencyKey: string | null; path: string; email: unknown }>} */
const sent = [];
/** @type {Map<string, string>} Idempotency-Key -> email id */
const byKey = new Map();

const log = (fields) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), name: 'email-sink', ...fields })}\n`);

function reply(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req, limit = 1_000_000) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://sink');
  try {
    if (req.method === 'GET' && url.pathname === '/healthz') return reply(res, 200, { status: 'ok' });
    if (req.method === 'GET' && url.pathname === '/sent') {
      const key = url.searchParams.get('key');
      return reply(res, 200, key === null ? sent : sent.filter((e) => e.idempotencyKey === key));
    }
    if (req.method !== 'POST') return reply(res, 404, { error: 'not found' });
    if (token && req.headers.authorization !== `Bearer ${token}`) return reply(res, 401, { error: 'unauthorized' });
    const raw = await readBody(req);
    let email;
    try {
      email = JSON.parse(raw);
    } catch {
      return reply(res, 400, { error: 'body is not JSON' });
    }
    const key = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : null;
    if (key !== null && byKey.has(key)) {
      log({ msg: 'duplicate', idempotencyKey: key, id: byKey.get(key) });
      return reply(res, 200, { id: byKey.get(key), duplicate: true });
    }
    if (failRate > 0 && Math.random() < failRate) {
      log({ msg: 'failing on purpose', idempotencyKey: key });
      return reply(res, 503, { error: 'try again' }, { 'retry-after': '1' });
    }
    const entry = { id: randomUUID(), receivedAt: new Date().toISOString(), idempotencyKey: key, path: url.pathname, email };
    sent.push(entry);
    if (sent.length > KEEP) sent.splice(0, sent.length - KEEP);
    if (key !== null) {
      byKey.set(key, entry.id);
      if (byKey.size > 100 * KEEP) byKey.delete(byKey.keys().next().value);
    }
    log({ msg: 'email', id: entry.id, idempotencyKey: key, to: email?.user, subject: email?.subject });
    return reply(res, 202, { id: entry.id });
  } catch (error) {
    return reply(res, error?.status ?? 500, { error: String(error?.message ?? error) });
  }
});

server.listen(port, host, () => log({ msg: 'listening', host, port: server.address().port, auth: token ? 'bearer' : 'none' }));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    log({ msg: 'stopping', signal });
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
