import type { Order } from '@stream/contracts';
import { NonRetryableError } from '@stream/core';
import { validateHeaderValue } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { EmailSink, waitUntil } from '@stream/local-stack';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BODY_EXCERPT_CHARS, confirmationEmail, EMAIL_FIELD_MAX_CHARS, emailText, EmailApiUnavailableError, EmailClient, idempotencyKeyOf } from './emailer.js';

const TOKEN = 'tok-emailer-7f3a9c-do-not-leak';
const order: Order = { id: 'o-1', userId: 'u-42', symbol: 'AAPL', side: 'buy', quantity: 10, price: 187.25, executedAt: new Date('2026-01-02T15:04:05Z') };

let sink: EmailSink;
beforeEach(async () => {
  sink = await EmailSink.start();
});
afterEach(() => sink.close());

const client = (timeoutMs = 2000, url = sink.url) => new EmailClient({ url, token: TOKEN, timeoutMs, maxRetryAfterMs: 60_000 });
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable('expected a failure'),
    (e: unknown) => e as Error,
  );

describe('idempotencyKeyOf', () => {
  const hostile = [
    '注文-一',
    '🦄🏳️‍🌈',
    'o-1\r\nX-Injected: yes',
    'o-\u0000',
    '\u0001\u001b[31m\u007f',
    'é',
    'a b',
    "!'()*",
    '%',
    '%25',
    'x'.repeat(200),
    '注'.repeat(200),
  ];

  it('keeps an id of unreserved characters as it is', () => {
    expect(idempotencyKeyOf('o-1')).toBe('o-1');
    expect(idempotencyKeyOf('Az09-._~')).toBe('Az09-._~');
  });

  it('percent-encodes every other UTF-8 byte, upper-case', () => {
    expect(idempotencyKeyOf('o-1\r\n')).toBe('o-1%0D%0A');
    expect(idempotencyKeyOf('\u0000')).toBe('%00');
    expect(idempotencyKeyOf('注')).toBe('%E6%B3%A8');
    expect(idempotencyKeyOf('🦄')).toBe('%F0%9F%A6%84');
    expect(idempotencyKeyOf('%')).toBe('%25');
    expect(idempotencyKeyOf("a b!'()*")).toBe('a%20b%21%27%28%29%2A');
    for (const id of hostile) expect(decodeURIComponent(idempotencyKeyOf(id))).toBe(id);
  });

  it('gives a valid header value, the same for the same id and different ones for different ids', () => {
    for (const id of hostile) {
      expect(() => validateHeaderValue('idempotency-key', idempotencyKeyOf(id))).not.toThrow();
      expect(idempotencyKeyOf(id)).toBe(idempotencyKeyOf(id));
    }
    expect(() => validateHeaderValue('idempotency-key', 'o-1\r\n')).toThrow(); // what Node did with the raw id
    expect(new Set(hostile.map(idempotencyKeyOf)).size).toBe(hostile.length);
    expect(idempotencyKeyOf('%41')).not.toBe(idempotencyKeyOf('A'));
  });

  it('reaches the real email API with an id Node would refuse as a header', async () => {
    const id = 'o-\u0000注🦄\r\n';
    await client().sendConfirmation({ ...order, id }, { idempotencyKey: idempotencyKeyOf(id) });
    expect(sink.postsFor(idempotencyKeyOf(id)).map((r) => r.status)).toEqual([200]);
  });
});

describe('confirmationEmail', () => {
  it('states quantity, symbol, side and price', () => {
    const email = confirmationEmail(order);
    expect(email.user).toBe('u-42');
    expect(email.subject).toBe('Order Confirmation');
    expect(email.body).toContain('10 shares of AAPL');
    expect(email.body).toContain('buy');
    expect(email.body).toContain('187.25');
    expect(confirmationEmail({ ...order, side: 'sell' }).body).toMatch(/sell order .* sold 10 shares/);
  });

  it('writes no control character, line separator or bidi override of the order into the body (#20)', () => {
    const hostileId = 'o-1\r\nBcc: all@example.com\u0000\u001b[31m\u0085\u2028\u202Egnp.exe\u2066x\u2069';
    const body = confirmationEmail({ ...order, id: hostileId, symbol: 'AA\nPL\u202E' }).body;
    expect(body).not.toMatch(/[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u);
    expect(body).toContain('order o-1\uFFFD\uFFFDBcc: all@example.com\uFFFD\uFFFD[31m\uFFFD\uFFFD\uFFFDgnp.exe\uFFFDx\uFFFD was executed');
    expect(body).toContain('shares of AA\uFFFDPL\uFFFD at');
    // Printable text, CJK and emoji stay as they are.
    expect(confirmationEmail({ ...order, id: '注文-🦄 1' }).body).toContain('order 注文-🦄 1 was executed');
  });

  it('bounds each free-text field, counting code points (#20)', () => {
    expect(emailText('x'.repeat(EMAIL_FIELD_MAX_CHARS))).toBe('x'.repeat(EMAIL_FIELD_MAX_CHARS));
    const long = emailText('🦄'.repeat(EMAIL_FIELD_MAX_CHARS + 50));
    expect([...long]).toHaveLength(EMAIL_FIELD_MAX_CHARS);
    expect(long.endsWith('🦄…')).toBe(true);
    const body = confirmationEmail({ ...order, id: 'o'.repeat(1000), symbol: 's'.repeat(1000) }).body;
    expect(body.length).toBeLessThan(2 * EMAIL_FIELD_MAX_CHARS + 200);
  });
});

describe('EmailClient against a real HTTP server', () => {
  it('POSTs the confirmation as JSON with the idempotency key and the bearer token', async () => {
    await client().sendConfirmation(order, { idempotencyKey: 'o-1' });
    expect(sink.requests).toHaveLength(1);
    const [request] = sink.requests;
    expect(request!.body).toEqual({ user: 'u-42', subject: 'Order Confirmation', body: confirmationEmail(order).body });
    expect(request!.headers['idempotency-key']).toBe('o-1');
    expect(request!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(request!.headers['content-type']).toMatch(/^application\/json/);
  });

  it('reports 5xx as retryable', async () => {
    sink.script = () => ({ status: 503, body: 'down for maintenance' });
    const error = await failure(client().sendConfirmation(order, { idempotencyKey: 'o-1' }));
    expect(error).toBeInstanceOf(EmailApiUnavailableError);
    expect(error).toMatchObject({ status: 503, retryAfterMs: undefined });
    expect(error.message).toMatch(/HTTP 503 .*down for maintenance/);
    expect(sink.requests).toHaveLength(1); // got's own retries are off
  });

  it('reports 429 with its Retry-After, in seconds or as an HTTP-date', async () => {
    sink.script = () => ({ status: 429, headers: { 'retry-after': '1' } });
    expect(await failure(client().sendConfirmation(order, { idempotencyKey: 'o-1' }))).toMatchObject({ status: 429, retryAfterMs: 1000 });
    sink.script = () => ({ status: 429, headers: { 'retry-after': new Date(Date.now() + 30_000).toUTCString() } });
    const error = (await failure(client().sendConfirmation(order, { idempotencyKey: 'o-1' }))) as EmailApiUnavailableError;
    expect(error.retryAfterMs).toBeGreaterThan(28_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('reports other 4xx as non-retryable, with the status and a bounded body excerpt', async () => {
    const body = `{"error":"invalid recipient"}${'x'.repeat(2000)}`;
    sink.script = () => ({ status: 400, body });
    const error = await failure(client().sendConfirmation(order, { idempotencyKey: 'o-1' }));
    expect(error).toBeInstanceOf(NonRetryableError);
    expect(error.message).toContain('HTTP 400');
    expect(error.message).toContain('{"error":"invalid recipient"}');
    expect(error.message).toContain(body.slice(0, BODY_EXCERPT_CHARS));
    expect(error.message).not.toContain(body.slice(0, BODY_EXCERPT_CHARS + 1));
  });

  it('keeps the token out of errors even when the API echoes the request', async () => {
    sink.script = (r) => ({ status: 401, body: JSON.stringify({ error: 'bad token', got: r.headers.authorization }) });
    const error = await failure(client().sendConfirmation(order, { idempotencyKey: 'o-1' }));
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(TOKEN);
  });

  it('keeps a token straddling the excerpt cut out of the error: redacted before the body is cut (#20)', async () => {
    // The token starts 10 characters before the cut: cutting first would keep those 10 characters.
    const body = `${'x'.repeat(BODY_EXCERPT_CHARS - 10)}${TOKEN}${'y'.repeat(100)}`;
    for (const status of [400, 503]) {
      sink.script = () => ({ status, body });
      const error = await failure(client().sendConfirmation(order, { idempotencyKey: 'o-1' }));
      expect(error.message).not.toContain(TOKEN.slice(0, 10));
      expect(error.message).not.toContain(TOKEN.slice(0, 4));
      expect(error.message).toContain(`${'x'.repeat(BODY_EXCERPT_CHARS - 10)}[redacted]`);
    }
  });

  it('times out a slow answer as a retryable error, and the server sees the request abandoned', async () => {
    sink.script = () => ({ delayMs: 3000 });
    const started = Date.now();
    const error = await failure(client(200).sendConfirmation(order, { idempotencyKey: 'o-1' }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toBeInstanceOf(EmailApiUnavailableError);
    expect(error.message).toMatch(/TimeoutError ETIMEDOUT/);
    await waitUntil(() => sink.requests[0]?.outcome === 'abandoned', 'the server to see the client go away');
  });

  it('reports network errors as retryable, rebuilt without got options (which hold the token)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await failure(client(1000, `http://127.0.0.1:${port}/v1/emails`).sendConfirmation(order, { idempotencyKey: 'o-1' }));
    expect(error).toBeInstanceOf(EmailApiUnavailableError);
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(error.cause).toBeUndefined();
    expect(JSON.stringify({ ...error, message: error.message, stack: error.stack })).not.toContain(TOKEN);

    sink.script = () => ({ destroy: true });
    const reset = await failure(client().sendConfirmation(order, { idempotencyKey: 'o-1' }));
    expect(reset).toBeInstanceOf(EmailApiUnavailableError);
  });

  it('stops at once when its signal aborts', async () => {
    sink.script = () => ({ delayMs: 3000 });
    const controller = new AbortController();
    const pending = failure(client(5000).sendConfirmation(order, { idempotencyKey: 'o-1', signal: controller.signal }));
    await waitUntil(() => sink.requests.length === 1, 'the request to arrive');
    controller.abort(new Error('revoked'));
    const error = await pending;
    expect(error).toBeInstanceOf(EmailApiUnavailableError);
    await waitUntil(() => sink.requests[0]?.outcome === 'abandoned', 'the server to see the client go away');
  });
});
