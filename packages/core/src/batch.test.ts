import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { delay, payment, payments, receipts } from '../test/fixtures.js';
import type { AgentContext } from './agent.js';
import { batchRecordHandler } from './batch.js';
import { NonRetryableError } from './errors.js';
import { createTestApp } from './testing/index.js';

const fast = { initialMs: 1, maxMs: 4, jitter: 0 };

describe('batch agents', () => {
  it('hands each partition its records in offset order, in batches of at most maxRecords, the partitions side by side', async () => {
    const topic = payments('batch-order', 3);
    const batches: { partition: number; offsets: number[] }[] = [];
    let running = 0;
    let overlapped = false;
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { batch: { maxRecords: 10, maxWaitMs: 5 } }, async (records, batch) => {
        running += 1;
        if (running > 1) overlapped = true;
        batches.push({ partition: batch.partition, offsets: records.map((r) => Number(r.ctx.offset)) });
        for (const r of records) expect(r.ctx.partition).toBe(batch.partition);
        await delay(20);
        running -= 1;
      }),
    );
    // Sent at once (h.send sends one after the other, each waiting for the producer's linger).
    await Promise.all(Array.from({ length: 300 }, (_, i) => h.app.send(topic, { key: `k${i}`, value: payment(i) })));
    await h.settle();
    expect(batches.every((b) => b.offsets.length >= 1 && b.offsets.length <= 10)).toBe(true);
    for (const partition of [0, 1, 2]) {
      const offsets = batches.filter((b) => b.partition === partition).flatMap((b) => b.offsets);
      expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i));
    }
    expect(batches.reduce((n, b) => n + b.offsets.length, 0)).toBe(300);
    // Batches of different partitions ran at the same time.
    expect(overlapped).toBe(true);
    // While a partition's batch runs, the next one fills up to maxRecords.
    expect(Math.max(...batches.map((b) => b.offsets.length))).toBe(10);
    const committed = h.committed(topic);
    expect([...committed.values()].reduce((a, b) => a + b, 0)).toBe(300);
    await h.stop();
  });

  it("bounds the records waiting in batches by the agent's concurrency", async () => {
    const topic = payments('batch-concurrency', 1);
    const sizes: number[] = [];
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { concurrency: 3, batch: { maxRecords: 10, maxWaitMs: 5 } }, async (records) => {
        sizes.push(records.length);
        await delay(5);
      }),
    );
    await Promise.all(Array.from({ length: 30 }, (_, i) => h.app.send(topic, { key: `k${i}`, value: payment(i) })));
    await h.settle();
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(30);
    // A record holds its slot until its batch ran: never more than 3 in the open and running batches.
    expect(Math.max(...sizes)).toBe(3);
    await h.stop();
  });

  it("also runs on a context of its own (not the runtime's): each record waits on its own promise for its outcome", async () => {
    const handler = batchRecordHandler<string, number>(async (records) => records.map((r) => (r.value < 0 ? new Error(`negative ${r.value}`) : undefined)), {
      maxRecords: 3,
      maxWaitMs: 5,
    });
    const ctx = (offset: number) =>
      ({ topic: 't', partition: 0, offset: String(offset), signal: new AbortController().signal }) as unknown as AgentContext<string>;
    const outcomes = await Promise.allSettled([handler(1, ctx(0)), handler(-2, ctx(1)), handler(3, ctx(2))]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(outcomes[1]).toMatchObject({ reason: new Error('negative -2') });
  });

  it('retries and dead-letters only the records a batch failed, and the commit never passes them', async () => {
    const topic = payments('batch-outcomes', 1);
    const seen = new Map<string, number>();
    const processed: string[] = [];
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { retry: { attempts: 3, backoff: fast }, batch: { maxRecords: 50, maxWaitMs: 5 } }, async (records) => {
        return records.map(({ value }) => {
          seen.set(value.id, (seen.get(value.id) ?? 0) + 1);
          // p-3 always fails (its own fault), p-7 is permanent, p-9 fails once.
          if (value.id === 'p-3') return new Error('bad record p-3');
          if (value.id === 'p-7') return new NonRetryableError('p-7 can never succeed');
          if (value.id === 'p-9' && seen.get('p-9') === 1) return new Error('flaky p-9');
          processed.push(value.id);
          return undefined;
        });
      }),
    );
    for (let i = 0; i < 20; i += 1) await h.send(topic, { key: `k${i}`, value: payment(i) });
    await h.settle();
    expect(seen.get('p-3')).toBe(3);
    expect(seen.get('p-7')).toBe(1);
    expect(seen.get('p-9')).toBe(2);
    // Every other record ran once.
    for (let i = 0; i < 20; i += 1) if (![3, 7, 9].includes(i)) expect(seen.get(`p-${i}`)).toBe(1);
    expect(processed.sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `p-${i}`)
        .filter((id) => id !== 'p-3' && id !== 'p-7')
        .sort(),
    );
    expect(
      h
        .deadLetters(topic)
        .map((d) => d.sourceOffset)
        .sort(),
    ).toEqual(['3', '7']);
    expect(h.committed(topic).get(0)).toBe(20);
    await h.stop();
  });

  it('fails every record of a batch whose handler throws, and each record sends with its own context', async () => {
    const topic = payments('batch-throws', 2);
    const out = receipts('batch-throws-out', 2);
    let calls = 0;
    const h = await createTestApp({ outputs: [out] }, (app) =>
      app.agent(topic, { retry: { attempts: 2, backoff: fast }, batch: { maxRecords: 100, maxWaitMs: 5 } }, async (records) => {
        calls += 1;
        if (calls === 1) throw new Error('the first batch fails as a whole');
        for (const { value, ctx } of records) await ctx.send(out, { key: value.id, value: { paymentId: value.id, amount: value.amount } });
      }),
    );
    for (let i = 0; i < 30; i += 1) await h.send(topic, { key: `k${i}`, value: payment(i) });
    await h.settle();
    const produced = await h.produced(out);
    expect(produced.map((r) => r.value.paymentId).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `p-${i}`).sort());
    expect(h.deadLetters(topic)).toEqual([]);
    await h.stop();
  });

  it('fails the batch of a handler that throws before returning a promise, and goes on with the next', async () => {
    const topic = payments('batch-sync-throw', 1);
    let calls = 0;
    const done: string[] = [];
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { retry: { attempts: 3, backoff: fast }, batch: { maxRecords: 5, maxWaitMs: 1 } }, ((records: readonly { value: { id: string } }[]) => {
        calls += 1;
        if (calls === 1) throw new Error('thrown synchronously');
        for (const r of records) done.push(r.value.id);
        return Promise.resolve();
      }) as never),
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => h.app.send(topic, { key: `k${i}`, value: payment(i) })));
    await h.settle();
    expect(done.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `p-${i}`).sort());
    await h.stop();
  });

  it('rejects batch options out of range and ordering', async () => {
    const topic = payments('batch-options', 1);
    await expect(createTestApp({}, (app) => app.agent(topic, { batch: { maxRecords: 0, maxWaitMs: 5 } }, async () => undefined))).rejects.toThrow(
      /batch\.maxRecords must be a whole number from 1 to 100000, got 0/,
    );
    await expect(createTestApp({}, (app) => app.agent(topic, { batch: { maxRecords: 5, maxWaitMs: -1 } }, async () => undefined))).rejects.toThrow(
      /batch\.maxWaitMs/,
    );
    const withOrdering = { batch: { maxRecords: 5, maxWaitMs: 1 }, ordering: 'key' } as never;
    await expect(createTestApp({}, (app) => app.agent(topic, withOrdering, async () => undefined))).rejects.toThrow(/drop ordering/);
  });

  it('property: whatever records fail and how often, every good record is processed once, those that never failed in offset order per partition, and only records that always fail are dead-lettered', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('ok', 'poison', 'flaky'), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 0, max: 3 }),
        async (kinds, maxRecords, maxWaitMs) => {
          const topic = payments(`batch-prop-${Math.random().toString(36).slice(2)}`, 2);
          const tries = new Map<string, number>();
          const order = new Map<number, number[]>();
          const h = await createTestApp({}, (app) =>
            app.agent(topic, { retry: { attempts: 2, backoff: fast }, batch: { maxRecords, maxWaitMs } }, async (records, batch) =>
              records.map(({ value, ctx }) => {
                const n = (tries.get(value.id) ?? 0) + 1;
                tries.set(value.id, n);
                const kind = kinds[Number(value.id.slice(2))];
                if (kind === 'poison' || (kind === 'flaky' && n === 1)) return new Error(`${kind} ${value.id}`);
                const done = order.get(batch.partition) ?? [];
                done.push(kind === 'ok' ? Number(ctx.offset) : -1 - Number(ctx.offset));
                order.set(batch.partition, done);
                return undefined;
              }),
            ),
          );
          for (let i = 0; i < kinds.length; i += 1) await h.send(topic, { key: `k${i}`, value: payment(i) });
          await h.settle();
          const poison = kinds.filter((k) => k === 'poison').length;
          expect(h.deadLetters(topic)).toHaveLength(poison);
          for (const done of order.values()) {
            const clean = done.filter((o) => o >= 0);
            expect(clean).toEqual([...clean].sort((a, b) => a - b));
          }
          const processed = [...order].flatMap(([partition, done]) => done.map((o) => `${partition}:${o}`));
          expect(processed).toHaveLength(kinds.length - poison);
          expect(new Set(processed).size).toBe(processed.length);
          expect([...h.committed(topic).values()].reduce((a, b) => a + b, 0)).toBe(kinds.length);
          await h.stop();
        },
      ),
      { numRuns: 25 },
    );
  });
});
