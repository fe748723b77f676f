import { describe, expect, it } from 'vitest';
import { DecodeError, NonRetryableError, SchemaValidationError } from '../errors.js';
import { silentLogger } from '../logger.js';
import type { OutgoingMessage, RawMessage } from '../transport/transport.js';
import { resolveRetry } from './backoff.js';
import { DEAD_LETTER_HEADERS } from './dead-letter.js';
import { FailurePolicy, type AttemptFailure, type FailureHost, type FailurePolicyOptions } from './failure-policy.js';
import { noInstrumentation } from './instrumentation.js';
import { PartitionState, type Delivery } from './partition.js';
import { RETRY_HEADERS, type RetryOrigin } from './retry-topics.js';

const labels = { agent: 'orders-agent', topic: 'orders' };
const retry = resolveRetry({ attempts: 3, backoff: { initialMs: 10, maxMs: 40, jitter: 0 } });
const stages = [
  { topic: 'orders.retry.1s', delayMs: 1000 },
  { topic: 'orders.retry.1m', delayMs: 60_000 },
];

function policyOptions(overrides: Partial<FailurePolicyOptions> = {}): FailurePolicyOptions {
  return { source: 'orders', labels, retry, deadLetterTopic: 'orders.dlq', exactlyOnce: false, retryStages: [], stage: 0, ...overrides };
}

/** A host that records what the policy sends, finishes and counts; `failSends` produce calls reject first. */
function fakeHost(failSends = 0) {
  const produced: OutgoingMessage[] = [];
  const finished: { delivery: Delivery; outputs: readonly OutgoingMessage[] }[] = [];
  const counts = { failed: 0, retried: 0, deadLettered: 0 };
  let produceCalls = 0;
  const host: FailureHost = {
    appId: 'shop',
    instrumentation: {
      ...noInstrumentation,
      failed: () => void (counts.failed += 1),
      retried: () => void (counts.retried += 1),
      deadLettered: () => void (counts.deadLettered += 1),
    },
    produce: async (messages) => {
      produceCalls += 1;
      if (produceCalls <= failSends) throw new Error('broker unavailable');
      produced.push(...messages);
    },
    finished: (delivery, outputs) => void finished.push({ delivery, outputs }),
  };
  return { host, produced, finished, counts, produceCalls: () => produceCalls };
}

function delivery(headers: Record<string, string> = {}): Delivery {
  const state = new PartitionState('orders', 2, 1);
  const raw: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers)) raw[name] = Buffer.from(value);
  const message: RawMessage = { key: Buffer.from('k1'), value: Buffer.from('{"id":1}'), headers: raw, offset: '7', timestamp: '1700000000000' };
  return state.accept(message, 7);
}

function failure(overrides: Partial<AttemptFailure> = {}): AttemptFailure {
  const log = silentLogger();
  return {
    delivery: delivery(),
    error: new Error('timeout'),
    attempt: 1,
    priorAttempts: 0,
    origin: undefined,
    firstFailureAt: new Date('2026-01-01T00:00:00Z'),
    waitSignal: new AbortController().signal,
    log: () => log,
    ...overrides,
  };
}

const header = (message: OutgoingMessage | undefined, name: string) => message?.headers?.[name]?.toString('utf8');

describe('FailurePolicy.decide', () => {
  it('retries a transient failure in place with growing backoff until the attempts run out, then dead-letters', () => {
    const policy = new FailurePolicy(policyOptions(), fakeHost().host);
    expect(policy.decide(new Error('timeout'), 1)).toEqual({ kind: 'retry-in-place', delayMs: 10 });
    expect(policy.decide(new Error('timeout'), 2)).toEqual({ kind: 'retry-in-place', delayMs: 20 });
    expect(policy.decide(new Error('timeout'), 3)).toEqual({ kind: 'dead-letter', topic: 'orders.dlq', permanent: false });
  });

  it('dead-letters NonRetryable, schema and decode failures after one attempt', () => {
    const policy = new FailurePolicy(policyOptions(), fakeHost().host);
    for (const error of [
      new NonRetryableError('rejected'),
      new SchemaValidationError('orders', 'value', []),
      new DecodeError('orders', 'value', new Error('bad json')),
    ]) {
      expect(policy.decide(error, 1)).toEqual({ kind: 'dead-letter', topic: 'orders.dlq', permanent: true });
    }
  });

  it('forwards an exhausted record to the next retry stage, and dead-letters it after the last one', () => {
    const own = new FailurePolicy(policyOptions({ retryStages: stages, stage: 0 }), fakeHost().host);
    expect(own.decide(new Error('timeout'), 2).kind).toBe('retry-in-place');
    expect(own.decide(new Error('timeout'), 3)).toEqual({ kind: 'retry-stage', stage: stages[0] });
    const first = new FailurePolicy(policyOptions({ source: stages[0]!.topic, retryStages: stages, stage: 1 }), fakeHost().host);
    expect(first.decide(new Error('timeout'), 3)).toEqual({ kind: 'retry-stage', stage: stages[1] });
    const last = new FailurePolicy(policyOptions({ source: stages[1]!.topic, retryStages: stages, stage: 2 }), fakeHost().host);
    expect(last.decide(new Error('timeout'), 3)).toEqual({ kind: 'dead-letter', topic: 'orders.dlq', permanent: false });
  });

  it('sends a permanent failure past the retry stages straight to the dead letters', () => {
    const policy = new FailurePolicy(policyOptions({ retryStages: stages }), fakeHost().host);
    expect(policy.decide(new NonRetryableError('rejected'), 1)).toEqual({ kind: 'dead-letter', topic: 'orders.dlq', permanent: true });
  });

  it('without dead letters retries in place for ever, also permanent failures, with backoff capped at maxMs', () => {
    const policy = new FailurePolicy(policyOptions({ deadLetterTopic: null }), fakeHost().host);
    expect(policy.decide(new Error('timeout'), 100)).toEqual({ kind: 'retry-in-place', delayMs: 40 });
    expect(policy.decide(new NonRetryableError('rejected'), 1)).toEqual({ kind: 'retry-in-place', delayMs: 10 });
  });
});

describe('FailurePolicy.handle', () => {
  it('writes the dead letter at once with its source and attempts, then finishes the record without outputs', async () => {
    const fake = fakeHost();
    const policy = new FailurePolicy(policyOptions(), fake.host);
    const f = failure({ error: new NonRetryableError('rejected') });
    expect(await policy.handle(f)).toBe('done');
    expect(fake.produced).toHaveLength(1);
    const dead = fake.produced[0];
    expect(dead?.topic).toBe('orders.dlq');
    expect(dead?.key?.toString()).toBe('k1');
    expect(header(dead, DEAD_LETTER_HEADERS.sourceTopic)).toBe('orders');
    expect(header(dead, DEAD_LETTER_HEADERS.partition)).toBe('2');
    expect(header(dead, DEAD_LETTER_HEADERS.offset)).toBe('7');
    expect(header(dead, DEAD_LETTER_HEADERS.attempts)).toBe('1');
    expect(header(dead, DEAD_LETTER_HEADERS.errorMessage)).toBe('rejected');
    expect(header(dead, DEAD_LETTER_HEADERS.appId)).toBe('shop');
    expect(fake.finished).toEqual([{ delivery: f.delivery, outputs: [] }]);
    expect(fake.counts).toEqual({ failed: 1, retried: 0, deadLettered: 1 });
  });

  it("under exactly-once sends nothing itself: the dead letter is the record's output", async () => {
    const fake = fakeHost();
    const policy = new FailurePolicy(policyOptions({ exactlyOnce: true }), fake.host);
    await policy.handle(failure({ attempt: 3 }));
    expect(fake.produced).toEqual([]);
    expect(fake.finished).toHaveLength(1);
    expect(fake.finished[0]?.outputs.map((m) => m.topic)).toEqual(['orders.dlq']);
  });

  it('forwards to the retry stage with the attempts over every stage and the due time', async () => {
    const fake = fakeHost();
    const policy = new FailurePolicy(policyOptions({ retryStages: stages, exactlyOnce: true }), fake.host);
    const before = Date.now();
    expect(await policy.handle(failure({ attempt: 3 }))).toBe('done');
    const later = fake.finished[0]?.outputs[0];
    expect(later?.topic).toBe('orders.retry.1s');
    expect(header(later, RETRY_HEADERS.sourceTopic)).toBe('orders');
    expect(header(later, RETRY_HEADERS.attempts)).toBe('3');
    expect(Number(header(later, RETRY_HEADERS.dueAt))).toBeGreaterThanOrEqual(before + 1000);
    expect(fake.counts).toEqual({ failed: 1, retried: 1, deadLettered: 0 });
  });

  it('dead-letters a record from a retry stage under its origin, without the retry headers', async () => {
    const fake = fakeHost();
    const policy = new FailurePolicy(policyOptions({ source: 'orders.retry.1s', retryStages: stages.slice(0, 1), stage: 1 }), fake.host);
    const origin: RetryOrigin = { topic: 'orders', partition: 0, offset: '41', attempts: 3, firstFailureAt: new Date('2026-01-01T00:00:00Z'), dueAt: 0 };
    const onStage = delivery({ [RETRY_HEADERS.attempts]: '3', [RETRY_HEADERS.sourceTopic]: 'orders', trace: 'kept' });
    await policy.handle(failure({ delivery: onStage, origin, priorAttempts: 3, attempt: 3 }));
    const dead = fake.produced[0];
    expect(header(dead, DEAD_LETTER_HEADERS.sourceTopic)).toBe('orders');
    expect(header(dead, DEAD_LETTER_HEADERS.partition)).toBe('0');
    expect(header(dead, DEAD_LETTER_HEADERS.offset)).toBe('41');
    expect(header(dead, DEAD_LETTER_HEADERS.attempts)).toBe('6');
    expect(header(dead, 'trace')).toBe('kept');
    expect(header(dead, RETRY_HEADERS.attempts)).toBeUndefined();
  });

  it('retries in place after the backoff, and gives up without finishing when the wait is aborted', async () => {
    const fake = fakeHost();
    const policy = new FailurePolicy(policyOptions(), fake.host);
    const started = Date.now();
    expect(await policy.handle(failure({ attempt: 2 }))).toBe('again');
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    const stop = new AbortController();
    const waiting = policy.handle(failure({ waitSignal: stop.signal }));
    stop.abort(new Error('stopping'));
    expect(await waiting).toBe('done');
    expect(fake.finished).toEqual([]);
    expect(fake.counts.retried).toBe(2);
  });

  it('keeps writing a dead letter until the broker takes it, and leaves the record unfinished when aborted meanwhile', async () => {
    const flaky = fakeHost(2);
    const policy = new FailurePolicy(policyOptions(), flaky.host);
    await policy.handle(failure({ error: new NonRetryableError('rejected') }));
    expect(flaky.produceCalls()).toBe(3);
    expect(flaky.produced).toHaveLength(1);
    expect(flaky.finished).toHaveLength(1);

    const down = fakeHost(Infinity);
    const stop = new AbortController();
    const stuck = new FailurePolicy(policyOptions(), down.host).handle(failure({ error: new NonRetryableError('rejected'), waitSignal: stop.signal }));
    setTimeout(() => stop.abort(new Error('revoked')), 30);
    expect(await stuck).toBe('done');
    expect(down.produceCalls()).toBeGreaterThanOrEqual(2);
    expect(down.finished).toEqual([]);
    expect(down.counts.deadLettered).toBe(0);
  });
});
