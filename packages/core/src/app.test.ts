import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTestApp, MemoryBroker, MemoryTransport } from './testing/index.js';
import { NonRetryableError, StreamError } from './errors.js';
import { delay, eventually, payment, payments, receipts } from '../test/fixtures.js';

const fastRetry = { attempts: 3, backoff: { initialMs: 1, maxMs: 5, jitter: 0 } };

describe('agents on the memory transport', () => {
  it('processes every record once and commits to the end of every partition', async () => {
    const topic = payments();
    const seen: string[] = [];
    const h = await createTestApp({}, (app) => app.agent(topic, async (p) => void seen.push(p.id)));
    await h.send(topic, ...Array.from({ length: 200 }, (_, i) => ({ key: `acct-${i % 13}`, value: payment(i) })));
    await h.settle();
    expect(new Set(seen).size).toBe(200);
    expect(seen).toHaveLength(200);
    const total = [...h.committed(topic).values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(200);
    await h.stop();
  });

  it('keeps records of one key in order while running up to `concurrency` at once', async () => {
    const topic = payments('keyed', 2);
    const order = new Map<string, number[]>();
    let inFlight = 0;
    let maxInFlight = 0;
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { concurrency: 8 }, async (p, ctx) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await delay(Number(p.id.slice(2)) % 3);
        const list = order.get(ctx.key) ?? [];
        list.push(Number(p.id.slice(2)));
        order.set(ctx.key, list);
        inFlight -= 1;
      }),
    );
    await h.send(topic, ...Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 20}`, value: payment(i) })));
    await h.settle();
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(8);
    for (const list of order.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
    await h.stop();
  });

  it('property: under random delays and transient failures every key stays in order and everything commits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 })), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: 16 }),
        async (records, concurrency) => {
          const topic = payments('prop', 3);
          const failuresLeft = new Map<string, number>();
          const done = new Map<string, number[]>();
          const h = await createTestApp({}, (app) =>
            app.agent(topic, { concurrency, retry: { attempts: 10, backoff: { initialMs: 1, maxMs: 2, jitter: 0 } } }, async (p, ctx) => {
              const [, wait, failures] = records[Number(p.id.slice(2))]!;
              await delay(wait);
              const left = failuresLeft.get(p.id) ?? failures;
              if (left > 0) {
                failuresLeft.set(p.id, left - 1);
                throw new Error('transient');
              }
              const list = done.get(ctx.key) ?? [];
              list.push(Number(p.id.slice(2)));
              done.set(ctx.key, list);
            }),
          );
          await h.send(topic, ...records.map(([key], i) => ({ key: `k${key}`, value: payment(i) })));
          await h.settle(10_000);
          await h.stop();
          const all = [...done.values()].flat();
          expect(all.sort((a, b) => a - b)).toEqual(records.map((_, i) => i));
          for (const list of done.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
          expect(h.deadLetters(topic)).toHaveLength(0);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("ordering 'partition' runs one record per partition at a time, in offset order", async () => {
    const topic = payments('strict', 3);
    const byPartition = new Map<number, number[]>();
    const running = new Set<number>();
    let overlap = false;
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { concurrency: 16, ordering: 'partition' }, async (_p, ctx) => {
        if (running.has(ctx.partition)) overlap = true;
        running.add(ctx.partition);
        await delay(1);
        running.delete(ctx.partition);
        const list = byPartition.get(ctx.partition) ?? [];
        list.push(Number(ctx.offset));
        byPartition.set(ctx.partition, list);
      }),
    );
    await h.send(topic, ...Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await h.settle();
    expect(overlap).toBe(false);
    for (const list of byPartition.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
    await h.stop();
  });

  it('never commits past a record that keeps failing, while later records of other keys go on', async () => {
    const topic = payments('stuck', 1);
    const processed = new Set<string>();
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { concurrency: 4, deadLetter: false, retry: { attempts: 2, backoff: { initialMs: 1, maxMs: 5, jitter: 0 } } }, async (p) => {
        if (p.id === 'p-3') throw new Error('downstream unavailable');
        processed.add(p.id);
      }),
    );
    await h.send(topic, ...Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await eventually(() => processed.size === 9, 5000, 'the other records');
    await delay(50);
    expect(h.committed(topic).get(0)).toBe(3);
    await h.stop();
    expect(h.committed(topic).get(0)).toBe(3);
  });

  it('retries a transient failure in place and sends nothing to the dead-letter topic', async () => {
    const topic = payments('transient', 1);
    const attempts: number[] = [];
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { retry: fastRetry }, async (_p, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error('try again');
      }),
    );
    await h.send(topic, { key: 'a', value: payment(1) });
    await h.settle();
    expect(attempts).toEqual([1, 2, 3]);
    expect(h.deadLetters(topic)).toEqual([]);
    expect(h.committed(topic).get(0)).toBe(1);
    await h.stop();
  });

  it('dead-letters a poison record exactly once with its headers, and processes the records after it', async () => {
    const topic = payments('poison', 1);
    const processed: string[] = [];
    const h = await createTestApp({ id: 'billing' }, (app) =>
      app.agent(topic, { retry: fastRetry }, async (p) => {
        if (p.id === 'p-1') throw new TypeError('cannot bill account');
        processed.push(p.id);
      }),
    );
    await h.send(topic, ...[0, 1, 2, 3].map((i) => ({ key: 'same-key', value: payment(i), headers: { origin: 'test' } })));
    await h.settle();
    expect(processed).toEqual(['p-0', 'p-2', 'p-3']);
    const dead = h.deadLetters(topic);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      key: 'same-key',
      sourceTopic: 'poison',
      sourcePartition: 0,
      sourceOffset: '1',
      errorClass: 'TypeError',
      errorMessage: 'cannot bill account',
      attempts: 3,
    });
    expect(JSON.parse(dead[0]!.value!)).toMatchObject({ id: 'p-1' });
    expect(dead[0]!.headers.origin).toBe('test');
    expect(dead[0]!.headers['dlq.app.id']).toBe('billing');
    expect(Number.isNaN(Date.parse(dead[0]!.headers['dlq.first.failure.at']!))).toBe(false);
    expect(h.committed(topic).get(0)).toBe(4);
    await h.stop();
  });

  it('dead-letters undecodable and invalid records at once, without calling the handler', async () => {
    const topic = payments('malformed', 1);
    const calls: string[] = [];
    const h = await createTestApp({}, (app) => app.agent(topic, { retry: fastRetry }, async (p) => void calls.push(p.id)));
    await h.sendRaw('malformed', { key: 'a', value: '{"id": "p-1", "acc' });
    await h.sendRaw('malformed', { key: 'a', value: JSON.stringify({ ...payment(2), amount: 'lots' }) });
    await h.sendRaw('malformed', { key: 'a', value: null });
    await h.send(topic, { key: 'a', value: payment(3) });
    await h.settle();
    expect(calls).toEqual(['p-3']);
    const dead = h.deadLetters(topic);
    expect(dead.map((d) => [d.errorClass, d.attempts])).toEqual([
      ['DecodeError', 1],
      ['SchemaValidationError', 1],
      ['SchemaValidationError', 1],
    ]);
    expect(dead[1]!.errorMessage).toMatch(/value\.amount/);
    await h.stop();
  });

  describe('delayed retry topics', () => {
    it('moves a failing record to its retry topics, runs it again once due, and keeps the source partition moving', async () => {
      const topic = payments('delayed', 1);
      const events: { id: string; topic: string; attempt: number; at: number }[] = [];
      let failuresLeft = 5; // 2 in place, 2 on the first stage, 1 on the second
      const h = await createTestApp({}, (app) =>
        app.agent(topic, { retry: { ...fastRetry, attempts: 2 }, retryTopics: { delaysMs: [50, 200] } }, async (p, ctx) => {
          events.push({ id: p.id, topic: ctx.topic, attempt: ctx.attempt, at: Date.now() });
          if (p.id === 'p-0' && failuresLeft-- > 0) throw new Error('partner API down');
        }),
      );
      // With 2 attempts per stage: p-0 fails twice on `delayed`, twice on `.retry.50ms`, once on `.retry.200ms`.
      h.app.health().agents.forEach((r) => expect(['delayed', 'delayed.retry.50ms', 'delayed.retry.200ms']).toContain(r.source));
      let maxOldestInFlightMs = 0;
      const sampler = setInterval(() => {
        const { agents, partitions } = h.app.health();
        const ages = [...agents.map((r) => r.oldestInFlightMs), ...partitions.map((p) => p.oldestUnfinished?.ageMs ?? 0)];
        maxOldestInFlightMs = Math.max(maxOldestInFlightMs, ...ages);
      }, 5);
      await h.send(topic, ...[0, 1, 2].map((i) => ({ key: 'same-key', value: payment(i), headers: { origin: 'test' } })));
      await h.settle();
      clearInterval(sampler);
      const p0 = events.filter((e) => e.id === 'p-0');
      expect(p0.map((e) => [e.topic, e.attempt])).toEqual([
        ['delayed', 1],
        ['delayed', 2],
        ['delayed.retry.50ms', 3],
        ['delayed.retry.50ms', 4],
        ['delayed.retry.200ms', 5],
        ['delayed.retry.200ms', 6],
      ]);
      // Waiting to be due is not counted as a stuck record by /healthz (per agent or per partition).
      expect(maxOldestInFlightMs).toBeLessThan(150);
      // Each stage waited its delay after the previous one gave up.
      expect(p0[2]!.at - p0[1]!.at).toBeGreaterThanOrEqual(45);
      expect(p0[4]!.at - p0[3]!.at).toBeGreaterThanOrEqual(190);
      // The records behind it on the source partition did not wait for it (same key, too).
      const p2 = events.find((e) => e.id === 'p-2')!;
      expect(p2.at).toBeLessThan(p0[2]!.at);
      expect(h.deadLetters(topic)).toEqual([]);
      expect(h.committed(topic).get(0)).toBe(3);
      expect(h.committed('delayed.retry.50ms').get(0)).toBe(1);
      expect(h.committed('delayed.retry.200ms').get(0)).toBe(1);
      const second = h.broker.messages('delayed.retry.200ms')[0]!;
      const headers = Object.fromEntries(Object.entries(second.headers).map(([k, v]) => [k, v?.toString()]));
      expect(headers).toMatchObject({
        origin: 'test',
        'retry.source.topic': 'delayed',
        'retry.source.partition': '0',
        'retry.source.offset': '0',
        'retry.attempts': '4',
        'retry.error.message': 'partner API down',
      });
      await h.stop();
    });

    it('dead-letters a record that fails every stage, naming its original topic, partition and offset', async () => {
      const topic = payments('delayed-dead', 2);
      const h = await createTestApp({ id: 'billing' }, (app) =>
        app.agent(topic, { retry: fastRetry, retryTopics: { delaysMs: [10, 20] } }, async (p) => {
          if (p.id === 'p-1') throw new TypeError('still down');
        }),
      );
      await h.send(topic, ...[0, 1, 2].map((i) => ({ key: 'k', value: payment(i), headers: { origin: 'test' } })));
      await h.settle();
      const dead = h.deadLetters(topic);
      expect(dead).toHaveLength(1);
      const source = h.broker.messages('delayed-dead').find((m) => (JSON.parse(m.value!.toString()) as { id: string }).id === 'p-1')!;
      expect(dead[0]).toMatchObject({
        sourceTopic: 'delayed-dead',
        sourcePartition: source.partition,
        sourceOffset: String(source.offset),
        errorClass: 'TypeError',
        attempts: 9,
      });
      expect(dead[0]!.headers.origin).toBe('test');
      expect(Object.keys(dead[0]!.headers).filter((k) => k.startsWith('retry.'))).toEqual([]);
      await h.stop();
    });

    it('exactly-once: a record retried through a stage sends its outputs once', async () => {
      const input = payments('delayed-eos-in', 1);
      const output = receipts('delayed-eos-out', 1);
      let failuresLeft = 1;
      const h = await createTestApp({ outputs: [output] }, (app) =>
        app.agent(input, { exactlyOnce: true, retry: { attempts: 1 }, retryTopics: { delaysMs: [10] } }, async (p, ctx) => {
          await ctx.send(output, { key: p.id, value: { paymentId: p.id, amount: p.amount } });
          if (p.id === 'p-1' && failuresLeft-- > 0) throw new Error('fails after sending: the send must not leak');
        }),
      );
      await h.send(input, ...[0, 1, 2].map((i) => ({ key: `k${i}`, value: payment(i) })));
      await h.settle();
      // p-1's first output was sent in its failed attempt: discarded with that attempt, as in place.
      expect((await h.produced(output)).map((r) => r.value.paymentId).sort()).toEqual(['p-0', 'p-1', 'p-2']);
      expect(h.broker.messages('delayed-eos-in.retry.10ms')).toHaveLength(1);
      expect(h.deadLetters(input)).toEqual([]);
      await h.stop();
    });

    it('rejects delays that are not whole milliseconds up to a week, and stream agents', async () => {
      const topic = payments('delayed-bad', 1);
      const app = (await import('./app.js')).createApp({ id: 'x', brokers: ['127.0.0.1:1'] });
      expect(() => app.agent(topic, { retryTopics: { delaysMs: [0] } }, async () => undefined)).toThrow(/retry topic delay 0/);
      expect(() => app.agent(topic, { retryTopics: { delaysMs: [1.5] } }, async () => undefined)).toThrow(/whole milliseconds/);
      expect(() => app.agent(topic, { retryTopics: { delaysMs: [60_000, 60_000] } }, async () => undefined)).toThrow(/repeat/);
      expect(() => app.stream(topic, { retryTopics: { delaysMs: [1000] } }, async () => undefined)).toThrow(/retryTopics is for app.agent/);
    });
  });

  it('a NonRetryableError skips the retries', async () => {
    const topic = payments('nonretryable', 1);
    let calls = 0;
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { retry: { attempts: 10 } }, async () => {
        calls += 1;
        throw new NonRetryableError('rejected by the API: 400');
      }),
    );
    await h.send(topic, { key: 'a', value: payment(1) });
    await h.settle();
    expect(calls).toBe(1);
    expect(h.deadLetters(topic)[0]).toMatchObject({ errorClass: 'NonRetryableError', attempts: 1 });
    await h.stop();
  });

  it('bounds what it buffers: a partition is paused while its handler is stuck', async () => {
    const topic = payments('backlog', 1);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = 0;
    const h = await createTestApp({ buffer: { maxRecords: 50 } }, (app) =>
      app.agent(topic, { concurrency: 4 }, async () => {
        started += 1;
        await gate;
      }),
    );
    await h.send(topic, ...Array.from({ length: 2000 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await eventually(() => started === 4);
    await delay(50);
    // The limit plus at most one fetched batch (the memory transport's batches are up to 500 records).
    expect(h.app.health().buffered).toBeLessThanOrEqual(50 + 500);
    expect(h.app.health().buffered).toBeLessThan(2000 - 4);
    release();
    await h.settle();
    expect(h.committed(topic).get(0)).toBe(2000);
    await h.stop();
  });

  it('sends what handlers produce and carries the trace context', async () => {
    const input = payments('in', 2);
    const output = receipts('out', 2);
    const h = await createTestApp({ outputs: [output] }, (app) =>
      app.agent(input, async (p, ctx) => {
        await ctx.send(output, { key: p.id, value: { paymentId: p.id, amount: p.amount } });
      }),
    );
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await h.send(input, { key: 'a', value: payment(1), headers: { traceparent } });
    await h.settle();
    const out = await h.produced(output);
    expect(out.map((r) => r.value)).toEqual([{ paymentId: 'p-1', amount: 2 }]);
    expect(out[0]!.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(out[0]!.headers.traceparent).not.toBe(traceparent);
    await h.stop();
  });

  it('exactly-once: outputs become visible only together with the committed offsets', async () => {
    const input = payments('eos-in', 1);
    const output = receipts('eos-out', 1);
    let fail = true;
    const h = await createTestApp({ outputs: [output] }, (app) =>
      app.agent(input, { exactlyOnce: true, retry: fastRetry }, async (p, ctx) => {
        await ctx.send(output, { key: p.id, value: { paymentId: p.id, amount: p.amount } });
        if (p.id === 'p-2' && fail) {
          fail = false;
          throw new Error('fails after sending: the send must not leak');
        }
      }),
    );
    await h.send(input, ...[1, 2, 3].map((i) => ({ key: `k${i}`, value: payment(i) })));
    await h.settle();
    const out = await h.produced(output);
    expect(out.map((r) => r.value.paymentId)).toEqual(['p-1', 'p-2', 'p-3']);
    expect(h.committed(input).get(0)).toBe(3);
    await h.stop();
  });

  for (const groupMetadata of [false, true]) {
    const mode = groupMetadata ? 'one transactional producer per consumer' : 'one per partition';
    it(`exactly-once (${mode}): stop() commits what finished since the last commit, outputs and offsets together`, async () => {
      const input = payments('eos-stop-in', 3);
      const output = receipts('eos-stop-out', 3);
      let handled = 0;
      // No commit before the stop: the interval is far away.
      const h = await createTestApp({ outputs: [output], groupMetadata, commitIntervalMs: 600_000 }, (app) =>
        app.agent(input, { exactlyOnce: true, concurrency: 4 }, async (p, ctx) => {
          await ctx.send(output, { key: p.id, value: { paymentId: p.id, amount: p.amount } });
          handled += 1;
        }),
      );
      await h.send(input, ...Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
      await eventually(() => handled === 30, 5000, 'every record handled');
      expect(await h.produced(output)).toEqual([]);
      await h.stop();
      const out = (await h.produced(output)).map((r) => r.value.paymentId);
      expect(out.length).toBe(30);
      expect(new Set(out).size).toBe(30);
      expect([0, 1, 2].reduce((sum, partition) => sum + (h.committed(input).get(partition) ?? 0), 0)).toBe(30);
    });
  }

  it('exactly-once: a partition whose producer is fenced while still assigned is claimed again from its committed offset', async () => {
    const broker = new MemoryBroker();
    const input = payments('eos-fenced-in', 1);
    const output = receipts('eos-fenced-out', 1);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const h = await createTestApp({ groupId: 'fenced', broker, outputs: [output], heartbeatIntervalMs: 20, commitIntervalMs: 10 }, (app) =>
      app.agent(input, { exactlyOnce: true, concurrency: 4 }, async (p, ctx) => {
        if (Number(p.id.slice(2)) >= 10) await gate;
        await ctx.send(output, { key: p.id, value: { paymentId: p.id, amount: p.amount } });
      }),
    );
    await h.send(input, ...Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await eventually(() => h.committed(input).get(0) === 10, 5000, 'the first ten committed');
    // Another producer registers the partition's transactional id (a coordinator that aborted our
    // transaction looks the same to us): the records in flight and their outputs must not be lost.
    await new MemoryTransport(broker).producer({ transactionalId: 'fenced.eos-fenced-in.0' }).connect();
    release();
    await h.settle();
    const out = (await h.produced(output)).map((r) => r.value.paymentId);
    expect(out.length).toBe(30);
    expect(new Set(out).size).toBe(30);
    expect(h.committed(input).get(0)).toBe(30);
    await h.stop();
  });

  it('exactly-once apps with one id in two groups do not fence each other', async () => {
    const broker = new MemoryBroker();
    const input = payments('eos-shared-in', 2);
    const output = receipts('eos-shared-out', 2);
    const start = (groupId: string) =>
      createTestApp({ id: 'same-app', groupId, broker, outputs: [output] }, (app) =>
        app.agent(input, { exactlyOnce: true }, async (p, ctx) => ctx.send(output, { key: p.id, value: { paymentId: p.id, amount: p.amount } })),
      );
    const a = await start('group-a');
    const b = await start('group-b');
    await a.send(input, ...Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await a.settle();
    await b.settle();
    // Each group produced every output once: 20 records, two groups.
    expect((await a.produced(output)).length).toBe(40);
    await a.stop();
    await b.stop();
  });

  it('stop() lets in-flight records finish, commits them and reports a clean stop', async () => {
    const topic = payments('drain', 1);
    let finished = 0;
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { concurrency: 5 }, async () => {
        await delay(100);
        finished += 1;
      }),
    );
    await h.send(topic, ...Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await eventually(() => h.app.health().agents[0]!.inFlight === 5);
    const result = await h.stop();
    expect(result.timedOut).toBe(false);
    expect(finished).toBe(5);
    expect(h.committed(topic).get(0)).toBe(5);
  });

  it('at the shutdown deadline ctx.signal aborts and the record is not committed', async () => {
    const topic = payments('deadline', 1);
    let aborted: unknown;
    const h = await createTestApp({ shutdownTimeoutMs: 50 }, (app) =>
      app.agent(topic, async (_p, ctx) => {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        aborted = ctx.signal.reason;
      }),
    );
    await h.send(topic, { key: 'a', value: payment(1) });
    await eventually(() => h.app.health().agents[0]!.inFlight === 1);
    const result = await h.stop();
    expect(result.timedOut).toBe(true);
    expect(aborted).toBeInstanceOf(StreamError);
    expect((aborted as StreamError).code).toBe('SHUTDOWN_TIMEOUT');
    expect(h.committed(topic).get(0) ?? 0).toBe(0);
  });

  it('shares partitions with a second instance of the app and loses nothing when one leaves', async () => {
    const broker = new MemoryBroker();
    const topic = payments('shared', 6);
    const processedBy = new Map<string, string>();
    const handler = (name: string) => async (p: { id: string }) => {
      await delay(1);
      processedBy.set(p.id, name);
    };
    const a = await createTestApp({ id: 'group', broker }, (app) => app.agent(topic, { concurrency: 4 }, handler('a')));
    await a.send(topic, ...Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    const b = await createTestApp({ id: 'group', broker }, (app) => app.agent(topic, { concurrency: 4 }, handler('b')));
    await eventually(() => b.app.health().assignment.length > 0, 5000, 'b to get partitions');
    expect(a.app.health().assignment.length + b.app.health().assignment.length).toBe(6);
    await a.send(topic, ...Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: payment(300 + i) })));
    await b.stop();
    await eventually(() => a.app.health().assignment.length === 6, 5000, 'a to take everything back');
    await a.settle(10_000);
    expect(processedBy.size).toBe(600);
    expect(new Set(processedBy.values())).toEqual(new Set(['a', 'b']));
    await a.stop();
  });

  it('aborts ctx.signal of in-flight records when their partition is revoked', async () => {
    const broker = new MemoryBroker();
    const topic = payments('revoke', 2);
    const reasons: unknown[] = [];
    const a = await createTestApp({ id: 'g2', broker }, (app) =>
      app.agent(topic, { concurrency: 10 }, async (_p, ctx) => {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        reasons.push(ctx.signal.reason);
      }),
    );
    await a.send(topic, { key: 'x', value: payment(0), partition: 0 }, { key: 'y', value: payment(1), partition: 1 });
    await eventually(() => a.app.health().agents[0]!.inFlight === 2);
    const b = await createTestApp({ id: 'g2', broker }, (app) => app.agent(topic, async () => undefined));
    await eventually(() => reasons.length === 1, 5000, 'one partition to be revoked');
    expect((reasons[0] as StreamError).message).toMatch(/revoked/);
    await b.stop();
    await a.stop();
  });
});

describe('stream agents', () => {
  it('a stream loop that fails while the app stops lets the stop finish at once, its records uncommitted', async () => {
    const topic = payments('stream-stop', 1);
    let fail: (error: Error) => void = () => undefined;
    const failing = new Promise<never>((_, reject) => (fail = reject));
    let seen = 0;
    const h = await createTestApp({ shutdownTimeoutMs: 5000 }, (app) =>
      app.stream(topic, { prefetch: 10 }, async (stream) => {
        for await (const _ of stream) {
          seen += 1;
          await failing; // a dependency that breaks while the app is stopping
        }
      }),
    );
    await h.send(topic, ...Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await eventually(() => seen === 1, 2000, 'the loop to hold the first record');
    const started = Date.now();
    const stopped = h.stop();
    await delay(50);
    fail(new Error('redis went away'));
    const result = await stopped;
    expect(result.timedOut).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(h.committed(topic).get(0) ?? 0).toBe(0);
  });

  it('a stream loop that never lets go: the shutdown deadline aborts every record waiting in it, none committed', async () => {
    const topic = payments('stream-hang', 2);
    let seen = 0;
    const h = await createTestApp({ shutdownTimeoutMs: 300 }, (app) =>
      app.stream(topic, { prefetch: 50 }, async (stream) => {
        for await (const _ of stream.take(40, { within: 20 })) {
          seen += 1;
          await new Promise(() => undefined); // a dependency that never answers
        }
      }),
    );
    await h.send(topic, ...Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await eventually(() => seen === 1, 2000, 'the loop to hold its first batch');
    const result = await h.stop();
    // The records of both partitions waited in the loop: each was rejected by its partition's abort, so the
    // runner went idle at the deadline instead of holding them in flight.
    expect(result.timedOut).toBe(true);
    expect(h.app.health().agents.map((a) => a.inFlight)).toEqual([0]);
    expect(h.committed(topic).get(0) ?? 0).toBe(0);
    expect(h.committed(topic).get(1) ?? 0).toBe(0);
  });

  it('hands batches to the loop and commits a batch once the next one is requested', async () => {
    const topic = payments('batches', 1);
    const batches: number[][] = [];
    const h = await createTestApp({}, (app) =>
      app.stream(topic, {}, async (stream) => {
        for await (const batch of stream.take(10, { within: 20 })) batches.push(batch.map((p) => Number(p.id.slice(2))));
      }),
    );
    await h.send(topic, ...Array.from({ length: 25 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await h.settle();
    expect(batches.flat()).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(batches.every((b) => b.length <= 10)).toBe(true);
    expect(h.committed(topic).get(0)).toBe(25);
    await h.stop();
  });

  it('reject fails the records it names on their own: a NonRetryableError dead-letters them, the rest of the batch goes on (#20)', async () => {
    const topic = payments('stream-reject', 1);
    const batches: number[][] = [];
    const h = await createTestApp({}, (app) =>
      app.stream(topic, { retry: { attempts: 5, backoff: { initialMs: 1, maxMs: 1 } } }, async (stream) => {
        const valid = stream.reject((p, r) => (p.amount % 10 === 0 ? new NonRetryableError(`payment ${p.id} of key ${r.key}: a round amount`) : undefined));
        for await (const batch of valid.take(10, { within: 20 })) batches.push(batch.map((p) => Number(p.id.slice(2))));
      }),
    );
    await h.send(topic, ...Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await h.settle();
    const round = Array.from({ length: 30 }, (_, i) => i).filter((i) => payment(i).amount % 10 === 0);
    expect(round.length).toBeGreaterThan(0);
    expect(batches.flat()).toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => !round.includes(i)));
    const letters = h.deadLetters(topic);
    expect(letters.map((l) => l.key)).toEqual(round.map((i) => `k${i}`));
    expect(letters[0]).toMatchObject({ errorClass: 'NonRetryableError', attempts: 1 });
    expect(letters[0]!.errorMessage).toMatch(/payment p-9 of key k9: a round amount/);
    expect(h.committed(topic).get(0)).toBe(30);
    await h.stop();
  });

  it('filter, map and through compose; a failing loop restarts and its unfinished records are retried', async () => {
    const input = payments('stream-in', 1);
    const output = receipts('stream-out', 1);
    let failOnce = true;
    const h = await createTestApp({ outputs: [output] }, (app) =>
      app.stream(input, { retry: fastRetry }, async (stream) => {
        const large = stream.filter((p) => p.amount > 50).map((p) => ({ paymentId: p.id, amount: p.amount }));
        for await (const receipt of large) {
          if (receipt.paymentId === 'p-60' && failOnce) {
            failOnce = false;
            throw new Error('loop failed');
          }
          await h.app.send(output, { key: receipt.paymentId, value: receipt });
        }
      }),
    );
    await h.send(input, ...Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: payment(i) })));
    await h.settle(10_000);
    const ids = (await h.produced(output)).map((r) => r.value.paymentId);
    expect(new Set(ids)).toEqual(
      new Set(
        Array.from({ length: 100 }, (_, i) => i)
          .filter((i) => (i % 100) + 1 > 50)
          .map((i) => `p-${i}`),
      ),
    );
    expect(h.deadLetters(input)).toEqual([]);
    await h.stop();
  });
});
