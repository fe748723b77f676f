import { orders, type Order } from '@stream/contracts';
import { createLogger, type Logger, type RetryOptions } from '@stream/core';
import { createTestApp, MemoryBroker, type TestHarness } from '@stream/core/testing';
import { EmailSink, localServers, requireServers, uniqueName, waitUntil } from '@stream/local-stack';
import { Redis } from 'ioredis';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfirmationInProgressError, emailerAgent, OrderConfirmer, type ConfirmOutcome } from './agent.js';
import { DedupeStore } from './dedupe.js';
import { confirmationEmail, EmailClient, emailText, idempotencyKeyOf } from './emailer.js';

const TOKEN = 'tok-emailer-91b2c7-never-log-me';
const FAST_RETRY: RetryOptions = { attempts: Infinity, backoff: { initialMs: 10, maxMs: 50, jitter: 0 } };

let redis: Redis;
let prefix: string;
let sink: EmailSink;
let harnesses: TestHarness[] = [];

const orderInput = (i: number) => ({
  id: `o-${i}`,
  userId: `u-${i % 7}`,
  symbol: ['AAPL', 'MSFT', 'TSLA'][i % 3]!,
  side: i % 2 === 0 ? ('buy' as const) : ('sell' as const),
  quantity: i + 1,
  price: 100 + i / 4,
  executedAt: '2026-01-02T15:04:05Z',
});
const asOrder = (i: number): Order => ({ ...orderInput(i), executedAt: new Date(orderInput(i).executedAt) });
const record = (i: number, partition?: number) => ({ key: `o-${i}`, value: orderInput(i), ...(partition === undefined ? {} : { partition }) });

/** The confirmer, with what each call did: outcomes and errors (the agent's retry policy sees the same). */
class SpyConfirmer extends OrderConfirmer {
  readonly outcomes: ConfirmOutcome[] = [];
  readonly errors: Error[] = [];
  override async confirm(order: Order, ctx: { readonly signal: AbortSignal; readonly log?: Logger }): Promise<ConfirmOutcome> {
    try {
      const outcome = await super.confirm(order, ctx);
      this.outcomes.push(outcome);
      return outcome;
    } catch (error) {
      this.errors.push(error as Error);
      throw error;
    }
  }
}

interface StartOptions {
  readonly id?: string;
  readonly broker?: MemoryBroker;
  readonly logger?: Logger;
  readonly timeoutMs?: number;
  readonly leaseMs?: number;
  readonly shutdownTimeoutMs?: number;
  readonly dedupe?: DedupeStore;
}

function newDedupe(leaseMs = 5000): DedupeStore {
  return new DedupeStore(redis, { leaseMs, ttlSeconds: 600, keyPrefix: prefix });
}

async function start(options: StartOptions = {}) {
  const dedupe = options.dedupe ?? newDedupe(options.leaseMs);
  const emailer = new EmailClient({ url: sink.url, token: TOKEN, timeoutMs: options.timeoutMs ?? 2000, maxRetryAfterMs: 5000 });
  const confirmer = new SpyConfirmer(emailer, dedupe);
  const h = await createTestApp(
    {
      id: options.id ?? 'order-emailer',
      ...(options.broker ? { broker: options.broker } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.shutdownTimeoutMs === undefined ? {} : { shutdownTimeoutMs: options.shutdownTimeoutMs }),
    },
    (app) => emailerAgent(app, orders, confirmer, { concurrency: 16, retry: FAST_RETRY }),
  );
  harnesses.push(h);
  return { h, dedupe, confirmer };
}

/** Every key of `ids` got exactly one 2xx answer, and no other key got any. */
function expectOneEmailEach(ids: readonly string[]) {
  const delivered = sink.delivered();
  expect([...delivered.keys()].sort()).toEqual([...ids].sort());
  expect([...delivered.values()].every((n) => n === 1)).toBe(true);
}

describe('order-emailer on the memory transport, the real Redis and a real HTTP email API', () => {
  beforeAll(async () => {
    await requireServers('redis');
    redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
  });
  beforeEach(async () => {
    prefix = `${uniqueName('emailer')}:`;
    sink = await EmailSink.start();
  });
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.stop();
    harnesses = [];
    await sink.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  });
  afterAll(() => redis.quit());

  it('sends each order exactly once, with the right body and headers', async () => {
    const { h, dedupe } = await start();
    const ids = Array.from({ length: 100 }, (_, i) => i);
    await h.send(orders, ...ids.map((i) => record(i)));
    await h.settle();
    expect(sink.requests).toHaveLength(100);
    expectOneEmailEach(ids.map((i) => `o-${i}`));
    for (const i of ids) {
      const [request] = sink.postsFor(`o-${i}`);
      expect(request!.body).toEqual(confirmationEmail(asOrder(i)));
      expect(request!.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(request!.headers['content-type']).toMatch(/^application\/json/);
    }
    expect((sink.postsFor('o-3')[0]!.body as { body: string }).body).toMatch(/sell order o-3 .* sold 4 shares of AAPL at 100\.75 per share/);
    expect(await dedupe.state('o-0')).toBe('sent');
    expect(h.deadLetters(orders)).toEqual([]);
  });

  it('an order id with CJK, emoji, CR/LF or NUL is emailed once, under a header-safe Idempotency-Key (#16 finding 3)', async () => {
    const { h, confirmer, dedupe } = await start();
    const ids = ['注文-二〇二六-一', 'o-🦄🏳️‍🌈👨‍👩‍👧‍👦', 'o-1\r\nX-Injected: yes', 'o-\u0000nul', 'o-\u0001\u001b[31m\u007f', 'o-%41', 'o-A'];
    const value = (id: string) => ({ ...orderInput(1), id });
    // Each twice, as a redelivery would: the second must find the first's record and send nothing.
    await h.send(
      orders,
      ...ids.flatMap((id) => [
        { key: id, value: value(id) },
        { key: id, value: value(id) },
      ]),
    );
    await h.settle();
    expect(h.deadLetters(orders)).toEqual([]);
    expect(confirmer.errors).toEqual([]);
    const keys = ids.map(idempotencyKeyOf);
    expect(new Set(keys).size).toBe(ids.length); // o-%41 and o-A keep different keys
    expectOneEmailEach(keys);
    expect(sink.requests).toHaveLength(ids.length);
    for (const id of ids) {
      const [request] = sink.postsFor(idempotencyKeyOf(id));
      expect((request!.body as { body: string }).body).toContain(`order ${emailText(id)} was executed`);
      expect(sink.emailsFor(id)).toBe(1);
      expect(await dedupe.state(id)).toBe('sent');
    }
    expect(confirmer.outcomes.filter((o) => o === 'already-sent')).toHaveLength(ids.length);
  });

  it('sends nothing twice on redelivery and on a replay after the order went through', async () => {
    const { h, confirmer } = await start();
    const ids = Array.from({ length: 20 }, (_, i) => i);
    // Each order three times: the same offsets' records redelivered, as after a crash before the commit.
    await h.send(orders, ...ids.flatMap((i) => [record(i), record(i), record(i)]));
    await h.settle();
    expect(sink.requests).toHaveLength(20);
    expect(confirmer.outcomes.filter((o) => o === 'already-sent')).toHaveLength(40);

    // Days later someone replays the topic: still nothing.
    await h.send(orders, ...ids.map((i) => record(i)));
    await h.settle();
    expect(sink.requests).toHaveLength(20);
    expectOneEmailEach(ids.map((i) => `o-${i}`));
  });

  it('500 then 200: one email, no dead letter', async () => {
    sink.script = (_r, nth) => (nth === 1 ? { status: 500, body: 'oops' } : {});
    const { h, confirmer } = await start();
    await h.send(orders, record(1));
    await h.settle();
    expect(sink.postsFor('o-1').map((r) => r.status)).toEqual([500, 200]);
    expectOneEmailEach(['o-1']);
    expect(confirmer.errors.map((e) => e.name)).toEqual(['EmailApiUnavailableError']);
    expect(h.deadLetters(orders)).toEqual([]);
  });

  it('429 with Retry-After: waits at least that long, then one email', async () => {
    sink.script = (_r, nth) => (nth === 1 ? { status: 429, headers: { 'retry-after': '1' } } : {});
    const { h } = await start();
    await h.send(orders, record(1));
    await h.settle(10_000);
    const [first, second, ...more] = sink.postsFor('o-1');
    expect(more).toEqual([]);
    expect(first!.status).toBe(429);
    expect(second!.status).toBe(200);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000);
    expectOneEmailEach(['o-1']);
    expect(h.deadLetters(orders)).toEqual([]);
  });

  it('400: dead-lettered at once with the status and a body excerpt; a replay from the DLQ sends once', async () => {
    const body = `{"error":"recipient u-1 unknown"}${'.'.repeat(3000)}`;
    sink.script = () => ({ status: 400, body });
    const { h, dedupe } = await start();
    await h.send(orders, record(1), record(2));
    await h.settle();
    expect(sink.requests).toHaveLength(2); // no retry
    const dead = h.deadLetters(orders);
    expect(dead.map((d) => d.key)).toEqual(['o-1', 'o-2']);
    expect(dead[0]).toMatchObject({ errorClass: 'NonRetryableError', attempts: 1, sourceTopic: 'orders' });
    expect(dead[0]!.errorMessage).toContain('HTTP 400');
    expect(dead[0]!.errorMessage).toContain('{"error":"recipient u-1 unknown"}');
    expect(dead[0]!.errorMessage.length).toBeLessThan(600);
    expect(await dedupe.state('o-1')).toBeNull(); // the claim was given back

    // The API is fixed; an operator replays the dead letters (their original bytes) twice.
    sink.script = () => ({});
    for (let round = 0; round < 2; round += 1) {
      for (const d of dead) await h.sendRaw('orders', { key: d.key, value: d.value });
      await h.settle();
    }
    expect(sink.requests).toHaveLength(4);
    expectOneEmailEach(['o-1', 'o-2']);
  });

  it('a timeout is retried: one email', async () => {
    sink.script = (_r, nth) => (nth === 1 ? { delayMs: 3000 } : {});
    const { h } = await start({ timeoutMs: 200 });
    await h.send(orders, record(1));
    await h.settle();
    expect(sink.postsFor('o-1').map((r) => r.outcome)).toEqual(['abandoned', 'answered']);
    expectOneEmailEach(['o-1']);
    expect(h.deadLetters(orders)).toEqual([]);
  });

  it('a restart mid-stream, with requests in flight, sends nothing twice', async () => {
    const broker = new MemoryBroker();
    // The first 40 requests are answered; the next ones hang until the client gives up.
    sink.script = () => (sink.requests.length <= 40 ? { delayMs: 5 } : { delayMs: 10_000 });
    const first = await start({ broker, shutdownTimeoutMs: 100 });
    const ids = Array.from({ length: 200 }, (_, i) => i);
    await first.h.send(orders, ...ids.map((i) => record(i)));
    await waitUntil(() => sink.delivered().size === 40 && sink.requests.some((r) => r.outcome === 'pending'), 'requests in flight');
    const stopped = await first.h.stop();
    expect(stopped.timedOut).toBe(true); // in-flight requests were aborted at the deadline
    // The aborted requests' connections were closed: the server sees each of them go away.
    await waitUntil(() => sink.requests.every((r) => r.outcome !== 'pending'), 'the server to see the aborted requests end');
    const abandoned = sink.requests.filter((r) => r.outcome === 'abandoned').map((r) => r.key!);
    expect(abandoned.length).toBeGreaterThan(0);

    sink.script = () => ({});
    const second = await start({ broker });
    await second.h.settle(10_000);
    expectOneEmailEach(ids.map((i) => `o-${i}`));
    // Only the abandoned requests were made again: everything answered before the stop was skipped.
    expect(sink.requests).toHaveLength(200 + abandoned.length);
    for (const key of abandoned) expect(sink.postsFor(key).map((r) => r.outcome)).toEqual(['abandoned', 'answered']);
    expect(second.h.deadLetters(orders)).toEqual([]);
  });

  it('two instances of one group receiving the same order at once send it once', async () => {
    const broker = new MemoryBroker();
    sink.script = (_r, nth) => (nth === 1 ? { delayMs: 300 } : {});
    const a = await start({ broker });
    const b = await start({ broker });
    await waitUntil(() => a.h.app.health().assignment.length === 3 && b.h.app.health().assignment.length === 3, 'both instances assigned');
    const owner = (p: number) => (a.h.app.health().assignment.some((tp) => tp.partition === p) ? 'a' : 'b');
    const [p, q] = [0, 1, 2, 3, 4, 5].reduce<[number, number]>((acc, x) => (owner(x) === 'a' ? [x, acc[1]] : [acc[0], x]), [-1, -1]);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(q).toBeGreaterThanOrEqual(0);
    // The same order on a partition of each instance (as during a rebalance, or a producer retry).
    await a.h.send(orders, record(7, p), record(7, q));
    await a.h.settle();
    expect(sink.requests).toHaveLength(1);
    expectOneEmailEach(['o-7']);
    expect([...a.confirmer.outcomes, ...b.confirmer.outcomes].sort()).toEqual(['already-sent', 'sent']);
    const waited = [...a.confirmer.errors, ...b.confirmer.errors];
    expect(waited.length).toBeGreaterThan(0);
    expect(waited.every((e) => e instanceof ConfirmationInProgressError)).toBe(true);
  });

  it('a crashed worker’s claim holds the order until its lease runs out, then it is sent once', async () => {
    const dedupe = newDedupe();
    await redis.set(dedupe.keyOf('o-1'), 'pending:crashed-worker', 'PX', 300);
    const { h, confirmer } = await start({ dedupe });
    const sentAt = Date.now();
    await h.send(orders, record(1));
    await h.settle();
    expectOneEmailEach(['o-1']);
    expect(sink.requests[0]!.at - sentAt).toBeGreaterThanOrEqual(250);
    expect(confirmer.errors.length).toBeGreaterThan(0);
  });

  it('when Redis fails right after the POST, the retry records it without a second POST', async () => {
    class FlakyStore extends DedupeStore {
      failures = 2;
      override async markSent(orderId: string): Promise<void> {
        if (this.failures-- > 0) throw new Error('redis: connection lost');
        return super.markSent(orderId);
      }
    }
    const dedupe = new FlakyStore(redis, { leaseMs: 5000, ttlSeconds: 600, keyPrefix: prefix });
    const { h, confirmer } = await start({ dedupe });
    await h.send(orders, record(1));
    await h.settle();
    expect(sink.requests).toHaveLength(1);
    expect(confirmer.outcomes).toEqual(['recorded']);
    expect(await dedupe.state('o-1')).toBe('sent');
  });

  it('never writes the token to logs or dead letters, whatever fails', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger({ name: 'order-emailer', level: 'trace', destination });
    const echo = (r: { headers: Record<string, unknown> }) => JSON.stringify({ error: 'rejected', authorization: r.headers.authorization });
    sink.script = (r, nth) => {
      if (r.key === 'o-2') return nth === 1 ? { delayMs: 3000 } : {}; // a timeout, then fine
      switch (nth) {
        case 1:
          return { destroy: true }; // network error: got's error object holds the request options, token included
        case 2:
          return { status: 500, body: echo(r) };
        case 3:
          return { status: 429, headers: { 'retry-after': '0' }, body: echo(r) };
        default:
          return { status: 403, body: echo(r) };
      }
    };
    const { h } = await start({ logger, timeoutMs: 200 });
    await h.send(orders, record(1), record(2));
    await h.settle();
    const log = lines.join('');
    expect(log).toContain('dependency unavailable: waiting');
    expect(log).toContain('dead-lettering');
    expect(log).toMatch(/ECONNRESET|socket hang up/);
    expect(log).toContain('ETIMEDOUT');
    expect(log).not.toContain(TOKEN);
    const dead = h.deadLetters(orders);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.errorMessage).toContain('HTTP 403');
    expect(JSON.stringify(dead)).not.toContain(TOKEN);
    expectOneEmailEach(['o-2']);
  });
});
