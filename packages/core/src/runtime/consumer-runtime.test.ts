import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AgentContext } from '../agent.js';
import { silentLogger } from '../logger.js';
import { DEFAULT_HEADER_LIMITS, defineTopic } from '../topic.js';
import { MemoryBroker, MemoryTransport } from '../transport/memory/index.js';
import type { ConsumerListener, OutgoingMessage, RawMessage, TransportConsumer, TransportProducer } from '../transport/transport.js';
import { AgentRunner, type AgentHost } from './agent-runner.js';
import { resolveRetry } from './backoff.js';
import { ConsumerRuntime } from './consumer-runtime.js';
import { noInstrumentation } from './instrumentation.js';

const GROUP = 'shop';
const orders = defineTopic({ name: 'orders', key: z.string(), value: z.object({ n: z.number() }), partitions: 2 });
const receipts = defineTopic({ name: 'receipts', key: z.string(), value: z.object({ n: z.number() }), partitions: 1 });

type Handler = (value: { n: number }, ctx: AgentContext<unknown>) => Promise<void>;

/** A consumer runtime over one agent on `orders`, wired as the app wires them. */
async function setup(handler: Handler, options: { exactlyOnce?: boolean; maxRecords?: number; maxBatchSize?: number } = {}) {
  const broker = new MemoryBroker();
  broker.createTopic('orders', 2);
  broker.createTopic('receipts', 1);
  const transport = new MemoryTransport(broker, { maxBatchSize: options.maxBatchSize ?? 500 });
  const producer: TransportProducer = transport.producer();
  await producer.connect();
  const exactlyOnce = options.exactlyOnce ?? false;
  // The runner reports to the runtime, which is built from the runner: the closures run only once both exist.
  const host: AgentHost = {
    appId: GROUP,
    instrumentation: noInstrumentation,
    stopping: new AbortController().signal,
    deadline: new AbortController().signal,
    produce: (messages) => producer.send(messages),
    dequeued: (delivery) => runtime.dequeued(delivery),
    finished: (delivery, outputs) => runtime.finished(delivery, outputs),
  };
  const runner = new AgentRunner(
    {
      name: 'orders-agent',
      topic: orders,
      headerLimits: DEFAULT_HEADER_LIMITS,
      classify: undefined,
      checks: new Map(),
      handler: handler as (value: unknown, ctx: AgentContext<unknown>) => Promise<void>,
      concurrency: 4,
      ordering: 'key',
      retry: resolveRetry({ attempts: 1 }),
      deadLetterTopic: null,
      exactlyOnce,
      retryStages: [],
      stage: 0,
      log: silentLogger(),
    },
    host,
  );
  const runtime = new ConsumerRuntime({
    appId: GROUP,
    transport,
    runners: [runner],
    buffer: { maxRecords: options.maxRecords ?? 1000, maxBytes: 16 * 1024 * 1024 },
    commitIntervalMs: 60_000,
    log: silentLogger(),
    instrumentation: noInstrumentation,
    exactlyOnceTopics: new Set(exactlyOnce ? ['orders'] : []),
    consumer: {
      groupId: GROUP,
      topics: ['orders'],
      fromBeginning: true,
      sessionTimeoutMs: 30_000,
      heartbeatIntervalMs: 3_000,
      rebalanceTimeoutMs: 60_000,
      readCommitted: true,
      maxBytesPerPartition: 1024 * 1024,
    },
  });
  const send = async (from: number, count: number) => {
    const messages = Array.from({ length: count }, (_, i) => orders.encodeNow({ key: `k${(from + i) % 5}`, value: { n: from + i } }) as OutgoingMessage);
    await producer.send(messages);
  };
  const crashes: Error[] = [];
  const start = () => runtime.start((error) => void crashes.push(error));
  return { broker, transport, runtime, runner, send, start, crashes };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

const committedTotal = (broker: MemoryBroker) => broker.committed(GROUP).reduce((sum, o) => sum + Number(o.offset), 0);

/** A consumer whose group events the test calls itself, in the order it wants. */
function scriptedConsumer() {
  const script: { listener: ConsumerListener | undefined } = { listener: undefined };
  const consumer: TransportConsumer = {
    start: (listener) => {
      script.listener = listener;
      return Promise.resolve();
    },
    pause: () => undefined,
    resume: () => undefined,
    seek: () => undefined,
    commit: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  };
  const listener = (): ConsumerListener => {
    if (!script.listener) throw new Error('the runtime did not start the consumer');
    return script.listener;
  };
  return { consumer, listener };
}

/** Records of `orders` as fetched, all with key k0, at offsets `from`… */
function fetched(from: number, count: number): RawMessage[] {
  return Array.from({ length: count }, (_, i) => {
    const encoded = orders.encodeNow({ key: 'k0', value: { n: from + i } }) as OutgoingMessage;
    return { key: encoded.key, value: encoded.value, headers: encoded.headers, offset: String(from + i), timestamp: '0' };
  });
}

describe('ConsumerRuntime', () => {
  it('delivers every fetched record to its agent and commits each partition up to what is done', async () => {
    const seen: number[] = [];
    const t = await setup(async ({ n }) => void seen.push(n));
    await t.send(0, 40);
    expect(t.runtime.joined).toBe(false);
    await t.start();
    await until(() => seen.length === 40, 'all records handled');
    expect(t.runtime.joined).toBe(true);
    expect(t.runtime.assignment).toEqual(
      expect.arrayContaining([
        { topic: 'orders', partition: 0 },
        { topic: 'orders', partition: 1 },
      ]),
    );
    await t.runtime.commit();
    expect(committedTotal(t.broker)).toBe(40);
    expect(t.runtime.commitAgeMs).toBeLessThan(1000);
    expect(t.runtime.lag().every((p) => p.lag === 0)).toBe(true);
    expect(t.crashes).toEqual([]);
    t.runtime.beginStop();
    await t.runtime.finishStop();
  });

  it('pauses a partition whose buffer is full and resumes it once the buffer drains', async () => {
    let open!: () => void;
    const blocked = new Promise<void>((resolve) => (open = resolve));
    let handled = 0;
    const t = await setup(
      async () => {
        await blocked;
        handled += 1;
      },
      { maxRecords: 10, maxBatchSize: 5 },
    );
    await t.send(0, 200);
    await t.start();
    await until(() => t.runner.inFlight === 4, 'the agent busy');
    await new Promise((resolve) => setTimeout(resolve, 30));
    // A partition with room takes a whole batch: at most its limit plus one batch each, never the 200.
    expect(t.runtime.buffered()).toBeLessThanOrEqual(2 * (10 + 5));
    // Lag runs from the committed offset, not from what was fetched: nothing is committed, so all 200 are lag.
    const lag = t.runtime.lag().reduce((sum, p) => sum + p.lag, 0);
    expect(lag).toBe(200);
    open();
    await until(() => handled === 200, 'every record handled after the drain');
    await t.runtime.commit();
    expect(committedTotal(t.broker)).toBe(200);
    t.runtime.beginStop();
    await t.runtime.finishStop();
  });

  it("under exactly-once commits the handler's outputs with the offsets, in transactions", async () => {
    const t = await setup(async ({ n }, ctx) => ctx.send(receipts, { key: 'r', value: { n } }), { exactlyOnce: true });
    await t.send(0, 30);
    await t.start();
    await until(() => (void t.runtime.commit(), committedTotal(t.broker) === 30), 'offsets committed');
    const written = t.broker.messages('receipts').map((m) => (JSON.parse(m.value!.toString()) as { n: number }).n);
    expect(written.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(t.broker.commitHistory(GROUP).every((c) => c.transactionalId !== null)).toBe(true);
    t.runtime.beginStop();
    await t.runtime.finishStop();
  });

  it('after beginStop takes no new records; finishStop commits what was done and leaves the group', async () => {
    const seen: number[] = [];
    const t = await setup(async ({ n }) => void seen.push(n));
    await t.send(0, 10);
    await t.start();
    await until(() => seen.length === 10, 'first records handled');
    t.runtime.beginStop();
    await t.send(10, 10);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(seen).toHaveLength(10);
    await t.runtime.finishStop();
    expect(committedTotal(t.broker)).toBe(10);
  });

  it('on a rebalance starts no held record of a partition being revoked: the revoke comes before agents resume', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const started: number[] = [];
    const t = await setup(async ({ n }) => {
      started.push(n);
      if (n === 0) await blocked;
    });
    const scripted = scriptedConsumer();
    t.transport.consumer = () => scripted.consumer;
    await t.start();
    const p0 = { topic: 'orders', partition: 0 };
    scripted.listener().onAssignment({ generation: 1, partitions: [p0, { topic: 'orders', partition: 1 }] });
    // Same key: record 0 runs, records 1 and 2 wait for it.
    expect(scripted.listener().onBatch({ ...p0, messages: fetched(0, 3), highWatermark: '3' })).toBe(3);
    await until(() => started.length === 1, 'record 0 started');
    // The group rebalances: agents hold; record 0 finishes meanwhile; partition 0 then goes elsewhere.
    void scripted.listener().onRevoking();
    release();
    await until(() => t.runner.inFlight === 0, 'record 0 finished');
    scripted.listener().onAssignment({ generation: 2, partitions: [{ topic: 'orders', partition: 1 }] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(started).toEqual([0]);
    expect(t.runtime.buffered()).toBe(0);
    expect(t.crashes).toEqual([]);
    t.runtime.beginStop();
    await t.runtime.finishStop();
  });
});
