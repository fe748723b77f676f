import { afterEach, describe, expect, it } from 'vitest';
import { EmailSink, type EmailSinkOptions, type SinkEvent } from './email-sink.js';
import { waitUntil } from './wait-until.js';

const TOKEN = 'tok-sink-test';

let sink: EmailSink;
afterEach(() => sink.close());

const start = async (options: EmailSinkOptions = {}) => {
  sink = await EmailSink.start(options);
  return sink;
};

/** An order-emailer confirmation, as it POSTs one. */
const confirmation = (orderId: string) => ({
  user: 'u-1',
  subject: 'Order Confirmation',
  body: `Your buy order ${orderId} was executed: you bought 1 shares of ACME.`,
});

async function post(key: string | undefined, email: unknown = confirmation(key ?? 'o-x'), token: string | null = TOKEN, signal?: AbortSignal) {
  const response = await fetch(sink.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...(key ? { 'idempotency-key': key } : {}) },
    body: typeof email === 'string' ? email : JSON.stringify(email),
    ...(signal ? { signal } : {}),
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Record<string, unknown> };
}

describe('EmailSink', () => {
  it('sends one email per Idempotency-Key: a repeat is answered 200 duplicate with the first id', async () => {
    await start({ token: TOKEN });
    const first = await post('o-1');
    expect(first.status).toBe(200);
    expect(first.body.id).toEqual(expect.any(String));
    const again = await post('o-1');
    expect(again).toMatchObject({ status: 200, body: { id: first.body.id, duplicate: true } });
    expect(sink.stats()).toMatchObject({ requests: 2, emails: 1, repeatedKeys: 1, duplicateEmails: 0 });
    expect(sink.emailed(['o-1', 'o-2'])).toBe(1);
    // The client got two 2xx answers for o-1: what a test counts as "confirmed twice".
    expect(sink.delivered()).toEqual(new Map([['o-1', 2]]));
  });

  it('counts emails per order, so an order emailed under two keys shows up as a duplicate email', async () => {
    await start();
    await post('k-1', confirmation('o-7'), null);
    await post('k-2', confirmation('o-7'), null);
    await post('k-3', confirmation('o-8'), null);
    expect(sink.emailsFor('o-7')).toBe(2);
    expect(sink.emailsFor('o-8')).toBe(1);
    expect(sink.emailsFor('o-9')).toBe(0);
    expect(sink.stats()).toMatchObject({ emails: 3, duplicateEmails: 1 });
  });

  it('counts an order whose id holds spaces, CR/LF, NUL or a BOM by that id', async () => {
    await start();
    const ids = ['o 1', 'o-1\r\nX: y', 'o-\u0000', 'o-\ufeff\u0085', '注文 🦄'];
    for (const [i, id] of ids.entries()) await post(`k-${i}`, confirmation(id), null);
    for (const id of ids) expect(sink.emailsFor(id)).toBe(1);
    expect(sink.stats()).toMatchObject({ emails: ids.length, duplicateEmails: 0 });
  });

  it('rejects a missing or wrong bearer token with 401 and sends nothing', async () => {
    await start({ token: TOKEN });
    expect((await post('o-1', undefined, null)).status).toBe(401);
    expect((await post('o-1', undefined, 'wrong')).status).toBe(401);
    expect(sink.stats()).toMatchObject({ requests: 2, unauthorized: 2, emails: 0 });
    expect(sink.requests.map((r) => r.status)).toEqual([401, 401]);
    expect((await post('o-1')).status).toBe(200);
  });

  it('answers 503 with Retry-After during an outage window, then sends again', async () => {
    await start({ token: TOKEN });
    sink.unavailableFor(1000);
    expect(await post('o-1')).toMatchObject({ status: 503, retryAfter: '1' });
    expect(await post('o-1')).toMatchObject({ status: 503, retryAfter: '1' });
    expect(sink.emailed(['o-1'])).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    expect((await post('o-1')).status).toBe(200);
    expect(sink.stats()).toMatchObject({ requests: 3, unavailable: 2, emails: 1 });
  });

  it('fails the next N requests with 429 and the Retry-After asked for', async () => {
    await start();
    sink.failNext(2, { status: 429, retryAfterSeconds: 7 });
    expect(await post('o-1', undefined, null)).toMatchObject({ status: 429, retryAfter: '7' });
    expect(await post('o-2', undefined, null)).toMatchObject({ status: 429, retryAfter: '7' });
    expect((await post('o-3', undefined, null)).status).toBe(200);
    expect(sink.stats().unavailable).toBe(2);
  });

  it('answers after its latency, which can change while it runs', async () => {
    await start({ latencyMs: 300 });
    let started = Date.now();
    await post('o-1', undefined, null);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    sink.latency = 0;
    started = Date.now();
    await post('o-2', undefined, null);
    expect(Date.now() - started).toBeLessThan(250);
  });

  it('records a request the client gave up on as abandoned, and still sends its email', async () => {
    await start({ latencyMs: 1000 });
    await expect(post('o-1', undefined, null, AbortSignal.timeout(200))).rejects.toThrow();
    await waitUntil(() => sink.requests[0]?.outcome === 'abandoned', 'the server to see the client go away');
    await waitUntil(() => sink.emailed(['o-1']) === 1, 'the email to be sent anyway', 3000);
    expect(sink.delivered().size).toBe(0);
  });

  it('plays scripted answers, with nth counting the requests of each key', async () => {
    await start();
    sink.script = (_request, nth) => (nth === 1 ? { status: 500, body: '{"error":"oops"}' } : {});
    expect(await post('o-1', undefined, null)).toMatchObject({ status: 500, body: { error: 'oops' } });
    expect((await post('o-1', undefined, null)).status).toBe(200);
    expect(sink.postsFor('o-1').map((r) => [r.status, r.outcome])).toEqual([
      [500, 'answered'],
      [200, 'answered'],
    ]);
    sink.script = () => ({ destroy: true });
    await expect(post('o-2', undefined, null)).rejects.toThrow();
  });

  it('lists what arrived on GET /sent, by key too, and answers /healthz', async () => {
    await start();
    await post('o-1', undefined, null);
    await post('o-2', undefined, null);
    const all = (await (await fetch(new URL('/sent', sink.url))).json()) as Array<{ idempotencyKey: string; email: { user: string } }>;
    expect(all.map((e) => e.idempotencyKey)).toEqual(['o-1', 'o-2']);
    const one = (await (await fetch(new URL('/sent?key=o-2', sink.url))).json()) as Array<{ idempotencyKey: string; path: string; email: unknown }>;
    expect(one).toEqual([expect.objectContaining({ idempotencyKey: 'o-2', path: '/v1/emails', email: confirmation('o-2') })]);
    expect((await fetch(new URL('/healthz', sink.url))).status).toBe(200);
  });

  it('answers 400 to a body that is not JSON', async () => {
    await start();
    const response = await fetch(sink.url, { method: 'POST', headers: { 'idempotency-key': 'o-1' }, body: 'not json' });
    expect(response.status).toBe(400);
    expect(sink.stats().emails).toBe(0);
  });

  it('remembers only the last `retain` requests and emails, and forgets everything on reset', async () => {
    const events: SinkEvent[] = [];
    await start({ retain: 2, log: (event) => events.push(event) });
    for (const key of ['o-1', 'o-2', 'o-3']) await post(key, undefined, null);
    expect(sink.requests.map((r) => r.key)).toEqual(['o-2', 'o-3']);
    expect(sink.sent().map((e) => e.idempotencyKey)).toEqual(['o-2', 'o-3']);
    expect(sink.stats()).toMatchObject({ requests: 3, emails: 3 });
    expect(events.filter((e) => e.msg === 'email')).toHaveLength(3);
    sink.reset();
    expect(sink.requests).toHaveLength(0);
    expect(sink.stats()).toMatchObject({ requests: 0, emails: 0 });
    expect((await post('o-1', undefined, null)).body.duplicate).toBeUndefined();
  });
});
