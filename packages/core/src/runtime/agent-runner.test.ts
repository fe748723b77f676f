import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AgentContext, Ordering } from '../agent.js';
import { NonRetryableError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { DEFAULT_HEADER_LIMITS, defineTopic } from '../topic.js';
import type { OutgoingMessage, RawMessage } from '../transport/transport.js';
import { AgentRunner, type AgentHost } from './agent-runner.js';
import { RecordContext } from './handler-context.js';
import { resolveRetry } from './backoff.js';
import { noInstrumentation } from './instrumentation.js';
import { PartitionState, type Delivery } from './partition.js';

const orders = defineTopic({ name: 'orders', key: z.string(), value: z.object({ n: z.number() }), partitions: 2 });

/** A promise the test resolves by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function fakeHost() {
  const finished: Delivery[] = [];
  const dequeued: Delivery[] = [];
  const produced: OutgoingMessage[] = [];
  const stopping = new AbortController();
  const deadline = new AbortController();
  const host: AgentHost = {
    appId: 'shop',
    instrumentation: noInstrumentation,
    stopping: stopping.signal,
    deadline: deadline.signal,
    produce: async (messages) => void produced.push(...messages),
    dequeued: (delivery) => void dequeued.push(delivery),
    finished: (delivery) => void finished.push(delivery),
  };
  return { host, finished, dequeued, produced, deadline };
}

type Handler = (value: { n: number }, ctx: AgentContext<unknown>) => Promise<void>;

function runner(host: AgentHost, handler: Handler, options: { concurrency?: number; ordering?: Ordering; stage?: number; exactlyOnce?: boolean } = {}) {
  return new AgentRunner(
    {
      name: 'orders-agent',
      topic: orders,
      headerLimits: DEFAULT_HEADER_LIMITS,
      classify: undefined,
      checks: new Map(),
      handler: handler as (value: unknown, ctx: AgentContext<unknown>) => Promise<void>,
      concurrency: options.concurrency ?? 4,
      ordering: options.ordering ?? 'key',
      retry: resolveRetry({ attempts: 2, backoff: { initialMs: 1, maxMs: 1, jitter: 0 } }),
      deadLetterTopic: 'orders.dlq',
      exactlyOnce: options.exactlyOnce ?? false,
      retryStages: [{ topic: 'orders.retry.1s', delayMs: 1000 }],
      stage: options.stage ?? 0,
      log: silentLogger(),
    },
    host,
  );
}

const partitions = [new PartitionState('orders', 0, 1), new PartitionState('orders', 1, 1)];
let nextOffset = 0;

/** A delivery of `{ n }` under `key` on partition `partition`, encoded as the topic would send it. */
function record(key: string, n: number, partition = 0, state = partitions[partition]!): Delivery {
  const encoded = orders.encodeNow({ key, value: { n } }) as OutgoingMessage;
  const offset = nextOffset++;
  const message: RawMessage = { key: encoded.key, value: encoded.value, headers: {}, offset: String(offset), timestamp: String(Date.now()) };
  return state.accept(message, offset);
}

describe('AgentRunner', () => {
  it('keeps the records of one key in order while running up to `concurrency` of different keys at once', async () => {
    const fake = fakeHost();
    const seen = new Map<string, number[]>();
    let inFlight = 0;
    let maxInFlight = 0;
    const agent = runner(
      fake.host,
      async ({ n }, ctx) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        // Later records of a key finish faster: only the scheduler keeps them in order.
        await new Promise((resolve) => setTimeout(resolve, (10 - (n % 10)) % 4));
        seen.set(String(ctx.key), [...(seen.get(String(ctx.key)) ?? []), n]);
        inFlight -= 1;
      },
      { concurrency: 3 },
    );
    for (let n = 0; n < 60; n++) agent.enqueue(record(`k${n % 6}`, n, n % 2));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await agent.whenIdle();
    expect(fake.finished).toHaveLength(60);
    expect(maxInFlight).toBe(3);
    for (const list of seen.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
  });

  it('with partition ordering runs one record per partition at a time, the partitions side by side', async () => {
    const fake = fakeHost();
    const running = new Map<number, number>();
    let bothAtOnce = false;
    const agent = runner(
      fake.host,
      async (_value, ctx) => {
        running.set(ctx.partition, (running.get(ctx.partition) ?? 0) + 1);
        expect(running.get(ctx.partition)).toBe(1);
        if (running.get(0) === 1 && running.get(1) === 1) bothAtOnce = true;
        await tick();
        running.set(ctx.partition, running.get(ctx.partition)! - 1);
      },
      { concurrency: 8, ordering: 'partition' },
    );
    for (let n = 0; n < 20; n++) agent.enqueue(record(`k${n}`, n, n % 2));
    await tick();
    await agent.whenIdle();
    expect(fake.finished).toHaveLength(20);
    expect(bothAtOnce).toBe(true);
  });

  it('starts nothing while held, lets what is in flight finish, and starts the queue on resume', async () => {
    const fake = fakeHost();
    const release = gate();
    const started: number[] = [];
    const agent = runner(
      fake.host,
      async ({ n }) => {
        started.push(n);
        await release.promise;
      },
      { ordering: 'none' },
    );
    agent.enqueue(record('a', 1));
    await tick();
    expect(started).toEqual([1]);
    agent.hold();
    agent.enqueue(record('b', 2));
    agent.enqueue(record('c', 3));
    release.open();
    await agent.whenIdle();
    expect(fake.finished.map((d) => d.offset)).toHaveLength(1);
    expect(started).toEqual([1]);
    agent.resume();
    await tick();
    expect(started).toEqual([1, 2, 3]);
    await agent.whenIdle();
    expect(fake.finished).toHaveLength(3);
  });

  it('after stopAccepting starts nothing more, and drops records of a revoked partition unstarted', async () => {
    const fake = fakeHost();
    const started: number[] = [];
    const agent = runner(fake.host, async ({ n }) => void started.push(n), { ordering: 'none' });
    const revoked = new PartitionState('orders', 0, 1);
    const dropped = record('a', 1, 0, revoked);
    revoked.revoke('test');
    agent.enqueue(dropped);
    expect(fake.dequeued).toContain(dropped);
    agent.stopAccepting();
    agent.enqueue(record('b', 2));
    await tick();
    expect(started).toEqual([]);
    expect(fake.finished).toEqual([]);
  });

  it('counts what is in flight and how long the oldest has been', async () => {
    const fake = fakeHost();
    const release = gate();
    const agent = runner(fake.host, () => release.promise);
    expect(agent.oldestInFlightMs()).toBe(0);
    agent.enqueue(record('a', 1));
    agent.enqueue(record('b', 2));
    expect(agent.inFlight).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(agent.oldestInFlightMs()).toBeGreaterThanOrEqual(15);
    release.open();
    await agent.whenIdle();
    expect(agent.inFlight).toBe(0);
    expect(agent.oldestInFlightMs()).toBe(0);
  });

  it('never reports a record aborted by the shutdown deadline, and hands failures to its failure policy', async () => {
    const fake = fakeHost();
    const agent = runner(fake.host, async ({ n }, ctx) => {
      if (n === 1) throw new NonRetryableError('rejected');
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    });
    const poison = record('a', 1);
    agent.enqueue(poison);
    agent.enqueue(record('b', 2));
    await tick();
    expect(fake.produced.map((m) => m.topic)).toEqual(['orders.dlq']);
    expect(fake.finished).toEqual([poison]);
    fake.deadline.abort(new Error('deadline'));
    await agent.whenIdle();
    expect(fake.finished).toEqual([poison]);
  });

  it('on a retry stage consumes the retry topic and counts attempts from the stage headers', async () => {
    const fake = fakeHost();
    const attempts: number[] = [];
    const agent = runner(fake.host, async (_value, ctx) => void attempts.push(ctx.attempt), { stage: 1 });
    expect(agent.source).toBe('orders.retry.1s');
    expect(agent.deadLetterTopic).toBe('orders.dlq');
    expect(agent.exactlyOnce).toBe(false);
    const encoded = orders.encodeNow({ key: 'a', value: { n: 1 } }) as OutgoingMessage;
    const headers = {
      'retry.source.topic': Buffer.from('orders'),
      'retry.source.partition': Buffer.from('0'),
      'retry.source.offset': Buffer.from('3'),
      'retry.attempts': Buffer.from('2'),
      'retry.first.failure.at': Buffer.from(new Date().toISOString()),
      'retry.due.at': Buffer.from(String(Date.now() + 20)),
    };
    const state = new PartitionState('orders.retry.1s', 0, 1);
    const started = Date.now();
    agent.enqueue(state.accept({ key: encoded.key, value: encoded.value, headers, offset: '0', timestamp: String(started) }, 0));
    await new Promise((resolve) => setTimeout(resolve, 1));
    // Waiting until due is not being stuck.
    expect(agent.oldestInFlightMs()).toBe(0);
    await agent.whenIdle();
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    expect(attempts).toEqual([3]);
  });

  describe('sends at least once', () => {
    const output = defineTopic({ name: 'receipts', value: z.object({ n: z.number() }) });

    /** A host whose produce requests wait until the test acknowledges (or refuses) them. */
    function ackingHost() {
      const fake = fakeHost();
      const acks: { messages: readonly OutgoingMessage[]; ack: () => void; refuse: (error: Error) => void }[] = [];
      const host: AgentHost = {
        ...fake.host,
        produce: (messages) => new Promise<void>((ack, refuse) => void acks.push({ messages, ack, refuse })),
      };
      return { ...fake, host, acks };
    }

    it('starts the next record of a key before the previous output is acknowledged, and finishes each only after its acknowledgement', async () => {
      const fake = ackingHost();
      const started: number[] = [];
      const agent = runner(
        fake.host,
        async ({ n }, ctx) => {
          started.push(n);
          await ctx.send(output, { value: { n } });
        },
        { concurrency: 1 },
      );
      const deliveries = [record('k', 1), record('k', 2), record('k', 3)];
      for (const d of deliveries) agent.enqueue(d);
      await tick();
      // Concurrency 1, one key: all three ran while no send was acknowledged yet.
      expect(started).toEqual([1, 2, 3]);
      expect(fake.acks).toHaveLength(3);
      expect(fake.finished).toEqual([]);
      let idle = false;
      void agent.whenIdle().then(() => (idle = true));
      fake.acks[1]!.ack();
      await tick();
      expect(fake.finished).toEqual([deliveries[1]]);
      expect(idle).toBe(false);
      fake.acks[0]!.ack();
      fake.acks[2]!.ack();
      await tick();
      expect(fake.finished).toEqual([deliveries[1], deliveries[0], deliveries[2]]);
      expect(idle).toBe(true);
    });

    /**
     * A runner at concurrency 1 whose handler sends one output per record, noting each attempt's number, then
     * waits for `afterSend` of that attempt, if given (an HTTP call, say).
     */
    const sendingRunner = (host: AgentHost, attempts: number[], afterSend?: (attempt: number) => Promise<void>) =>
      runner(
        host,
        async ({ n }, ctx) => {
          attempts.push(ctx.attempt);
          await ctx.send(output, { value: { n } });
          await afterSend?.(ctx.attempt);
        },
        { concurrency: 1 },
      );

    it('fails a record whose send the broker refuses: the handler runs again and the record finishes only once a send is acknowledged', async () => {
      const fake = ackingHost();
      const attempts: number[] = [];
      const agent = sendingRunner(fake.host, attempts);
      const first = record('k', 1);
      agent.enqueue(first);
      await tick();
      fake.acks[0]!.refuse(new Error('NOT_ENOUGH_REPLICAS'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(fake.finished).toEqual([]);
      expect(attempts).toEqual([1, 2]);
      fake.acks[1]!.ack();
      await tick();
      expect(fake.finished).toEqual([first]);
    });

    it('fails a record whose send was refused while its handler still ran, on the first attempt and on a retry', async () => {
      const fake = ackingHost();
      const attempts: number[] = [];
      const gates = [gate(), gate(), gate()];
      // The handler goes on after its send while the broker refuses what it sent.
      const agent = sendingRunner(fake.host, attempts, (attempt) => gates[attempt - 1]!.promise);
      const first = record('k', 1);
      agent.enqueue(first);
      await tick();
      fake.acks[0]!.refuse(new Error('NOT_ENOUGH_REPLICAS'));
      await tick();
      gates[0]!.open();
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Not finished (its output was lost): attempted again.
      expect(fake.finished).toEqual([]);
      expect(attempts).toEqual([1, 2]);
      fake.acks[1]!.refuse(new Error('NOT_ENOUGH_REPLICAS'));
      await tick();
      gates[1]!.open();
      await new Promise((resolve) => setTimeout(resolve, 20));
      // The retry's send was refused too: its attempts ran out, so it is forwarded, not finished.
      expect(fake.acks.map((a) => a.messages[0]!.topic)).toEqual(['receipts', 'receipts', 'orders.retry.1s']);
      expect(fake.finished).toEqual([]);
      fake.acks[2]!.ack();
      await tick();
      expect(fake.finished).toEqual([first]);
    });

    it('counts a record awaiting its acknowledgement as running, and forwards it by its class once every attempt was refused', async () => {
      const fake = ackingHost();
      const attempts: number[] = [];
      const agent = sendingRunner(fake.host, attempts);
      const first = record('k', 1);
      agent.enqueue(first);
      await tick();
      // The handler returned: only the acknowledgement is pending, and the record is still in flight.
      expect(agent.inFlight).toBe(0);
      expect(first.partition.oldestRunning()).toMatchObject({ agent: 'orders-agent', offset: first.offset });
      await new Promise((resolve) => setTimeout(resolve, 15));
      expect(agent.oldestInFlightMs()).toBeGreaterThanOrEqual(10);
      let idle = false;
      void agent.whenIdle().then(() => (idle = true));
      fake.acks[0]!.refuse(new Error('NOT_ENOUGH_REPLICAS'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(attempts).toEqual([1, 2]);
      fake.acks[1]!.refuse(new Error('NOT_ENOUGH_REPLICAS'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Attempts ran out: forwarded to the next retry stage, and finished only once that send is acknowledged.
      expect(fake.acks.map((a) => a.messages[0]!.topic)).toEqual(['receipts', 'receipts', 'orders.retry.1s']);
      expect(fake.finished).toEqual([]);
      expect(idle).toBe(false);
      fake.acks[2]!.ack();
      await tick();
      expect(fake.finished).toEqual([first]);
      expect(idle).toBe(true);
      expect(agent.oldestInFlightMs()).toBe(0);
      expect(first.partition.oldestRunning()).toBeUndefined();
    });

    it('under exactly-once finishes a record awaiting an acknowledgement with what it collected for the transaction', async () => {
      const fake = fakeHost();
      const outputs: (readonly OutgoingMessage[])[] = [];
      const host: AgentHost = { ...fake.host, finished: (delivery, messages) => void (fake.finished.push(delivery), outputs.push(messages)) };
      const written = gate();
      const agent = runner(
        host,
        async ({ n }, ctx) => {
          await ctx.send(output, { value: { n } });
          // What a table's emit does under exactly-once: the record also waits for this before it finishes.
          if (ctx instanceof RecordContext) ctx.awaitAck(written.promise);
        },
        { exactlyOnce: true },
      );
      const delivery = record('k', 1);
      agent.enqueue(delivery);
      await tick();
      expect(fake.finished).toEqual([]);
      written.open();
      await tick();
      expect(fake.finished).toEqual([delivery]);
      expect(outputs.map((list) => list.map((m) => m.topic))).toEqual([['receipts']]);
    });

    it('does not finish a record whose partition is revoked while its send awaits the acknowledgement', async () => {
      const fake = ackingHost();
      const state = new PartitionState('orders', 0, 1);
      const agent = runner(fake.host, async ({ n }, ctx) => ctx.send(output, { value: { n } }), { concurrency: 1 });
      const delivery = record('k', 1, 0, state);
      agent.enqueue(delivery);
      await tick();
      let idle = false;
      void agent.whenIdle().then(() => (idle = true));
      state.revoke('test');
      fake.acks[0]!.ack();
      await tick();
      expect(fake.finished).toEqual([]);
      expect(idle).toBe(true);
      expect(state.oldestRunning()).toBeUndefined();
    });
  });
});
