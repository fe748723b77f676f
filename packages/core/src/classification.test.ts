import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventually, payment, payments } from '../test/fixtures.js';
import { NonRetryableError, SchemaValidationError } from './errors.js';
import { classifyFailure, DependencyError } from './runtime/classify.js';
import { createTestApp } from './testing/index.js';
import { emptyRawHeaders, type RawHeaders } from './transport/transport.js';

const fast = { initialMs: 1, maxMs: 4, jitter: 0 };

/** An error as Node's net module raises it when nothing listens. */
function refused(port = 8086): Error {
  return Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`), {
    code: 'ECONNREFUSED',
    errno: -111,
    syscall: 'connect',
    address: '127.0.0.1',
    port,
  });
}

/** got's HTTPError as it is shaped (name, response.statusCode, options.url). */
function httpError(status: number): Error {
  return Object.assign(new Error(`Response code ${status}`), {
    name: 'HTTPError',
    response: { statusCode: status },
    options: { url: new URL('http://mail.test:8080/send') },
  });
}

describe('classifyFailure: whose fault a failed attempt was', () => {
  it.each([
    ['a plain Error (a bug, bad data)', new Error('x is undefined'), { kind: 'record' }],
    ['a TypeError', new TypeError('Invalid character in header content ["idempotency-key"]'), { kind: 'record' }],
    ['NonRetryableError', new NonRetryableError('rejected'), { kind: 'permanent' }],
    ['SchemaValidationError', new SchemaValidationError('t', 'value', [{ path: 'a', message: 'bad' }]), { kind: 'permanent' }],
    ['DependencyError', new DependencyError('partner-api', 'down'), { kind: 'dependency', dependency: 'partner-api' }],
    ['connection refused', refused(), { kind: 'dependency', dependency: '127.0.0.1:8086' }],
    ['HTTP 503 (got)', httpError(503), { kind: 'dependency', dependency: 'http mail.test:8080' }],
    ['HTTP 429 (got)', httpError(429), { kind: 'dependency', dependency: 'http mail.test:8080' }],
    ['HTTP 408 (got)', httpError(408), { kind: 'dependency', dependency: 'http mail.test:8080' }],
    ['HTTP 400 (got)', httpError(400), { kind: 'record' }],
    ['HTTP 404 (got)', httpError(404), { kind: 'record' }],
    ['a cause that is a dependency failure', new Error('lookup failed', { cause: refused() }), { kind: 'dependency', dependency: '127.0.0.1:8086' }],
    [
      'an AggregateError of connection failures',
      new AggregateError([new Error('x'), refused(9200)], 'all failed'),
      { kind: 'dependency', dependency: '127.0.0.1:9200' },
    ],
    ['ioredis without a connection', new Error('Connection is closed.'), { kind: 'dependency', dependency: 'redis' }],
    [
      'a Redis LOADING reply',
      Object.assign(new Error('LOADING Redis is loading the dataset in memory'), { name: 'ReplyError' }),
      { kind: 'dependency', dependency: 'redis' },
    ],
    [
      'a Redis WRONGTYPE reply',
      Object.assign(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), { name: 'ReplyError' }),
      { kind: 'record' },
    ],
    [
      'a retriable kafkajs error',
      Object.assign(new Error('The coordinator is loading'), { name: 'KafkaJSProtocolError', retriable: true }),
      { kind: 'dependency', dependency: 'kafka' },
    ],
    [
      'InfluxDB HttpError 500',
      Object.assign(new Error('internal error'), { name: 'HttpError', statusCode: 500 }),
      { kind: 'dependency', dependency: 'influxdb' },
    ],
    ['InfluxDB HttpError 400', Object.assign(new Error('bad flux'), { name: 'HttpError', statusCode: 400 }), { kind: 'record' }],
    [
      'Elasticsearch ResponseError 503',
      Object.assign(new Error('unavailable'), { name: 'ResponseError', meta: { statusCode: 503, body: {}, meta: {} } }),
      { kind: 'dependency', dependency: 'elasticsearch' },
    ],
    ['a thrown string', 'boom', { kind: 'record' }],
  ])('%s', (_what, error, expected) => {
    expect(classifyFailure(error)).toEqual(expected);
  });

  it('does not loop on an error that is its own cause', () => {
    const error = new Error('self');
    Object.defineProperty(error, 'cause', { value: error });
    expect(classifyFailure(error)).toEqual({ kind: 'record' });
  });
});

describe('dependency circuit (#16: outages are waited out, records that keep failing are dead-lettered)', () => {
  it('waits out an outage longer than the attempts without dead-lettering anything, starting no new records meanwhile', async () => {
    const topic = payments('outage', 1);
    let down = true;
    const started = new Set<string>();
    const processed: string[] = [];
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { concurrency: 4, retry: { attempts: 2, backoff: fast } }, async (p) => {
        started.add(p.id);
        if (down) throw new Error('lookup failed', { cause: refused() });
        processed.push(p.id);
      }),
    );
    for (let i = 0; i < 50; i += 1) await h.send(topic, { key: `k${i}`, value: payment(i) });
    let calls = 0;
    await eventually(() => h.app.health().agents[0]!.dependenciesDown.length > 0, 5000, 'the circuit to open');
    // Many more failed attempts than `attempts` allows: still nothing dead-lettered.
    const before = Date.now();
    await eventually(() => (calls = Date.now() - before) > 200, 5000);
    expect(calls).toBeGreaterThan(0);
    expect(h.app.health().agents[0]!.dependenciesDown.map((d) => d.dependency)).toEqual(['127.0.0.1:8086']);
    // Waiting out an outage is not being stuck: /healthz's age of the oldest record in flight stays low.
    expect(h.app.health().agents[0]!.oldestInFlightMs).toBeLessThan(150);
    // Only what was in flight when it opened, plus one probe, ever started.
    expect(started.size).toBeLessThanOrEqual(4 + 1);
    expect(h.broker.messages(`${topic.name}.dlq`)).toEqual([]);
    down = false;
    await h.settle();
    expect(processed.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `p-${i}`).sort());
    expect(h.broker.messages(`${topic.name}.dlq`)).toEqual([]);
    expect(h.committed(topic).get(0)).toBe(50);
    expect(h.app.health().agents[0]!.dependenciesDown).toEqual([]);
    await h.stop();
  });

  it("dead-letters a record whose dependency error persists while the dependency serves other records (the record's fault)", async () => {
    const topic = payments('poison-5xx', 1);
    const processed: string[] = [];
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { retry: { attempts: 3, backoff: fast } }, async (p) => {
        // InfluxDB answering 500 for this record's query only (finding 4's negative year).
        if (p.id === 'p-0') throw Object.assign(new Error('panic: negative year'), { name: 'HttpError', statusCode: 500 });
        processed.push(p.id);
      }),
    );
    for (let i = 0; i < 10; i += 1) await h.send(topic, { key: `k${i}`, value: payment(i) });
    await h.settle();
    expect(processed).toHaveLength(9);
    const letters = h.deadLetters(topic);
    expect(letters.map((l) => [l.sourceOffset, l.errorMessage, l.attempts])).toEqual([['0', 'panic: negative year', 3]]);
    expect(h.committed(topic).get(0)).toBe(10);
    await h.stop();
  });

  it('probes with a queued record when the circuit opens, even when nothing new arrives (the poison record still reaches its dead-letter topic)', async () => {
    const topic = payments('poison-queued', 1);
    const processed: string[] = [];
    let allSent!: () => void;
    const sent = new Promise<void>((resolve) => (allSent = resolve));
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { retry: { attempts: 3, backoff: fast } }, async (p) => {
        // Fails only once every other record waits in the queue behind it: no arrival pumps the queue later.
        if (p.id === 'p-0') {
          await sent;
          throw Object.assign(new Error('panic: negative year'), { name: 'HttpError', statusCode: 500 });
        }
        processed.push(p.id);
      }),
    );
    for (let i = 0; i < 10; i += 1) await h.send(topic, { key: `k${i}`, value: payment(i) });
    await eventually(() => h.app.health().buffered === 9, 5000, 'nine records queued behind p-0');
    allSent();
    await h.settle();
    expect(processed).toHaveLength(9);
    expect(h.deadLetters(topic).map((l) => [l.sourceOffset, l.attempts])).toEqual([['0', 3]]);
    await h.stop();
  });

  it('dead-letters two such records failing alike while the rest flow, and none when every record fails alike though the check passes', async () => {
    const topic = payments('two-poison', 1);
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { concurrency: 8, retry: { attempts: 3, backoff: fast } }, async (p) => {
        if (p.id === 'p-3' || p.id === 'p-7') throw Object.assign(new Error('panic: negative year'), { name: 'HttpError', statusCode: 500 });
        await new Promise((resolve) => setTimeout(resolve, 1));
      }),
    );
    for (let i = 0; i < 200; i += 1) await h.send(topic, { key: `k${i}`, value: payment(i) });
    await h.settle();
    expect(
      h
        .deadLetters(topic)
        .map((l) => l.sourceOffset)
        .sort(),
    ).toEqual(['3', '7']);

    // An index that does not exist yet: every record fails on the cluster, which answers its check.
    const all = payments('all-fail', 1);
    let missing = true;
    let failures = 0;
    const g = await createTestApp({}, (app) => {
      app.dependency('elasticsearch', async () => true);
      app.agent(all, { concurrency: 4, retry: { attempts: 2, backoff: fast } }, async () => {
        if (missing) {
          failures += 1;
          throw new DependencyError('elasticsearch', 'index_not_found_exception');
        }
      });
    });
    for (let i = 0; i < 10; i += 1) await g.send(all, { key: `k${i}`, value: payment(i) });
    await eventually(() => failures > 40, 5000, 'many failures');
    expect(g.broker.messages(`${all.name}.dlq`)).toEqual([]);
    missing = false;
    await g.settle();
    expect(g.broker.messages(`${all.name}.dlq`)).toEqual([]);
    await h.stop();
    await g.stop();
  });

  it('asks the dependency check when no other record can run (partition order): a passing check makes it the record’s fault', async () => {
    const topic = payments('poison-ordered', 1);
    let checks = 0;
    const h = await createTestApp({}, (app) => {
      app.dependency('influxdb', async () => {
        checks += 1;
        return true;
      });
      app.agent(topic, { ordering: 'partition', retry: { attempts: 3, backoff: fast } }, async (p) => {
        if (p.id === 'p-0') throw Object.assign(new Error('panic: negative year'), { name: 'HttpError', statusCode: 500 });
      });
    });
    for (let i = 0; i < 5; i += 1) await h.send(topic, { key: 'same', value: payment(i) });
    await h.settle();
    expect(h.deadLetters(topic).map((l) => l.sourceOffset)).toEqual(['0']);
    expect(checks).toBeGreaterThan(0);
    expect(h.committed(topic).get(0)).toBe(5);
    await h.stop();
  });

  it('a failing check keeps the record waiting however often it fails', async () => {
    const topic = payments('check-down', 1);
    let up = false;
    let attempts = 0;
    const h = await createTestApp({}, (app) => {
      app.dependency('redis', async () => up);
      app.agent(topic, { ordering: 'partition', retry: { attempts: 2, backoff: fast } }, async () => {
        attempts += 1;
        if (!up) throw new Error('Connection is closed.');
      });
    });
    await h.send(topic, { key: 'a', value: payment(1) });
    await eventually(() => attempts > 20, 5000, 'many attempts');
    expect(h.broker.messages(`${topic.name}.dlq`)).toEqual([]);
    up = true;
    await h.settle();
    expect(h.broker.messages(`${topic.name}.dlq`)).toEqual([]);
    await h.stop();
  });

  it("lets an agent's classify decide first, and falls back to the default", async () => {
    const topic = payments('own-classify', 1);
    class QuotaExceeded extends Error {}
    let quota = true;
    const h = await createTestApp({}, (app) =>
      app.agent(
        topic,
        {
          retry: { attempts: 2, backoff: fast },
          classify: (error, record) => {
            expect(record.topic).toBe(topic.name);
            if (error instanceof QuotaExceeded) return { kind: 'dependency', dependency: 'partner-api' };
            if (error.message === 'never') return { kind: 'permanent' };
            return undefined;
          },
        },
        async (p) => {
          if (p.id === 'p-1') throw new Error('never');
          if (quota) throw new QuotaExceeded('quota exceeded');
        },
      ),
    );
    await h.send(topic, { key: 'a', value: payment(0) });
    await eventually(() => h.app.health().agents[0]!.dependenciesDown.some((d) => d.dependency === 'partner-api'), 5000, 'the circuit to open');
    quota = false;
    await h.send(topic, { key: 'b', value: payment(1) });
    await h.settle();
    expect(h.deadLetters(topic).map((l) => [l.sourceOffset, l.attempts])).toEqual([['1', 1]]);
    await h.stop();
  });
});

/** What one record does when handled. */
type Behaviour = { kind: 'ok' } | { kind: 'poison' } | { kind: 'flaky'; failures: number };

const headerMaps = fc.dictionary(
  fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'), fc.string({ maxLength: 8 })),
  fc.option(fc.uint8Array({ maxLength: 16 }), { nil: null }),
  { maxKeys: 6 },
);

describe('property: committed offsets reach the end, and only records are dead-lettered, never outages', () => {
  it('holds for arbitrary headers, record errors and dependency outages interleaved', async () => {
    const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
      { weight: 5, arbitrary: fc.constant({ kind: 'ok' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'poison' as const }) },
      { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((failures) => ({ kind: 'flaky' as const, failures })) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ behaviour, headers: headerMaps, key: fc.integer({ min: 0, max: 5 }) }), { minLength: 1, maxLength: 25 }),
        // Outages as windows of time, apart by more than the longest backoff: every call in one fails on the dependency.
        fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 30 }), lengthMs: fc.integer({ min: 5, max: 40 }) }), { maxLength: 3 }),
        fc.integer({ min: 1, max: 4 }),
        async (records, outages, concurrency) => {
          const attempts = 3;
          const topic = payments(`prop-${Math.random().toString(36).slice(2)}`, 2);
          const failuresSoFar = new Map<string, number>();
          const processed = new Map<string, number>();
          const t0 = performance.now();
          const windows: { from: number; to: number }[] = [];
          let at = 0;
          for (const o of outages) {
            const from = at + (windows.length === 0 ? 0 : 20) + o.gapMs;
            windows.push({ from, to: from + o.lengthMs });
            at = from + o.lengthMs;
          }
          const down = () => {
            const now = performance.now() - t0;
            return windows.some((w) => now >= w.from && now < w.to);
          };
          const h = await createTestApp({}, (app) =>
            app.agent(topic, { concurrency, retry: { attempts, backoff: fast } }, async (p) => {
              await new Promise((resolve) => setTimeout(resolve, 1));
              if (down()) throw refused(6379);
              const b = records[Number(p.id.slice(2))]!.behaviour;
              const failed = failuresSoFar.get(p.id) ?? 0;
              if (b.kind === 'poison' || (b.kind === 'flaky' && failed < b.failures)) {
                failuresSoFar.set(p.id, failed + 1);
                throw new Error(`record ${p.id} is bad`);
              }
              processed.set(p.id, (processed.get(p.id) ?? 0) + 1);
            }),
          );
          for (const [i, r] of records.entries()) {
            const rawHeaders: RawHeaders = Object.assign(
              emptyRawHeaders(),
              Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v && Buffer.from(v)])),
            );
            await h.sendRaw(topic.name, { key: `k${r.key}`, value: JSON.stringify(payment(i)), rawHeaders });
          }
          await h.settle(5000);
          const letters = h.broker.messages(`${topic.name}.dlq`);
          const expectedDead = records.flatMap((r, i) =>
            r.behaviour.kind === 'poison' || (r.behaviour.kind === 'flaky' && r.behaviour.failures >= attempts) ? [`p-${i}`] : [],
          );
          const dead = letters.map((m) => (JSON.parse(m.value!.toString()) as { id: string }).id);
          expect(dead.sort()).toEqual(expectedDead.sort());
          for (const m of letters) expect(m.headers['dlq.error.message']?.toString()).toMatch(/^record p-\d+ is bad$/);
          for (const [i] of records.entries()) if (!expectedDead.includes(`p-${i}`)) expect(processed.get(`p-${i}`)).toBe(1);
          const ends = h.broker.endOffsets(topic.name);
          for (const end of ends) expect(h.committed(topic).get(end.partition) ?? 0).toBe(Number(end.offset));
          await h.stop();
        },
      ),
      { numRuns: 40, endOnFailure: true },
    );
  }, 120_000);
});
