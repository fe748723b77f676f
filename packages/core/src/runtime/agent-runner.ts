import { randomBytes } from 'node:crypto';
import type { AgentContext, AgentHandler, Ordering } from '../agent.js';
import { StreamError, isNonRetryable, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Headers, OutgoingRecord } from '../record.js';
import type { AnyTopic, Decoded, Topic } from '../topic.js';
import type { OutgoingMessage } from '../transport/transport.js';
import { backoffDelay, sleep, type ResolvedRetry } from './backoff.js';
import { deadLetterMessage } from './dead-letter.js';
import type { AgentLabels, Instrumentation } from './instrumentation.js';
import type { Delivery, PartitionState } from './partition.js';
import { Queue } from './queue.js';
import { retryMessage, retryOrigin, withoutRetryHeaders, type RetryOrigin, type RetryStage } from './retry-topics.js';

/** What an agent runner needs from its app. */
export interface AgentHost {
  readonly appId: string;
  readonly instrumentation: Instrumentation;
  /** Fires when shutdown starts: retry waits stop (the record stays uncommitted). */
  readonly stopping: AbortSignal;
  /** Fires when the shutdown deadline passes: handlers are told to give up. */
  readonly deadline: AbortSignal;
  /** Sends right away (at-least-once path). */
  produce(messages: readonly OutgoingMessage[]): Promise<void>;
  /** A delivery left the buffer. */
  dequeued(delivery: Delivery): void;
  /** A delivery is finished for this agent; `outputs` are committed with it under exactly-once. */
  finished(delivery: Delivery, outputs: readonly OutgoingMessage[]): void;
}

export interface AgentRunnerOptions {
  readonly name: string;
  readonly topic: AnyTopic;
  readonly handler: AgentHandler<unknown, unknown>;
  readonly concurrency: number;
  readonly ordering: Ordering;
  readonly retry: ResolvedRetry;
  /** Dead-letter topic name, or null when dead letters are off. */
  readonly deadLetterTopic: string | null;
  readonly exactlyOnce: boolean;
  /** The agent's delayed-retry stages, in order (empty: none). */
  readonly retryStages: readonly RetryStage[];
  /**
   * Which topic this runner consumes: 0 for the agent's own topic, n for `retryStages[n - 1]` (records
   * wait there until due, then run the same handler).
   */
  readonly stage: number;
  readonly log: Logger;
}

interface Queued {
  readonly delivery: Delivery;
  readonly orderingKey: string | null;
}

const NO_OUTPUTS: OutgoingMessage[] = [];
Object.freeze(NO_OUTPUTS);

const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;

/** Continues the consumed record's W3C trace in what its handler sends: same trace id, new parent span. */
function childTraceparent(consumed: Headers): string | undefined {
  const parent = consumed.traceparent;
  if (parent === undefined) return undefined;
  const match = TRACEPARENT.exec(parent);
  return match ? `00-${match[1]}-${randomBytes(8).toString('hex')}-${match[2]}` : undefined;
}

/**
 * Runs one agent's handler over the deliveries of its topic: at most `concurrency` at once, in the order
 * its `ordering` demands, with retries in place and dead letters. A record is reported finished only
 * when it was processed or dead-lettered; an aborted record (revoke, shutdown deadline) is never reported,
 * so its offset is never committed and the record is consumed again.
 */
export class AgentRunner {
  readonly name: string;
  /** The topic whose schemas decode the records: the agent's, also on its retry stages. */
  readonly topic: AnyTopic;
  /** The topic this runner consumes: the agent's own, or one of its retry topics. */
  readonly source: string;
  readonly #options: AgentRunnerOptions;
  readonly #host: AgentHost;
  readonly #labels: AgentLabels;
  readonly #ready = new Queue<Queued>();
  readonly #waiting = new Map<string, Queue<Queued>>();
  readonly #busyKeys = new Set<string>();
  #inFlight = 0;
  readonly #startedAt = new Map<Delivery, number>();
  /** Per partition state, built once: AbortSignal.any per record costs CPU and keeps listeners on long-lived signals. */
  readonly #signals = new WeakMap<PartitionState, { signal: AbortSignal; waitSignal: AbortSignal }>();
  #accepting = true;
  /** During a rebalance: nothing new starts until the next assignment (see ConsumerRuntime.onRevoking). */
  #held = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: AgentRunnerOptions, host: AgentHost) {
    this.name = options.name;
    this.topic = options.topic;
    this.source = options.stage === 0 ? options.topic.name : options.retryStages[options.stage - 1]!.topic;
    this.#options = options;
    this.#host = host;
    this.#labels = { agent: options.name, topic: this.source };
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** How long the oldest record in flight has been (0 when none): what `/healthz` calls stuck. */
  oldestInFlightMs(): number {
    let oldest = Infinity;
    for (const at of this.#startedAt.values()) oldest = Math.min(oldest, at);
    return oldest === Infinity ? 0 : Date.now() - oldest;
  }

  get deadLetterTopic(): string | null {
    return this.#options.deadLetterTopic;
  }

  get exactlyOnce(): boolean {
    return this.#options.exactlyOnce;
  }

  #orderingKey(delivery: Delivery): string | null {
    switch (this.#options.ordering) {
      case 'none':
        return null;
      case 'partition':
        return String(delivery.partition.partition);
      case 'key': {
        const key = delivery.message.key;
        return key === null ? null : `${delivery.partition.partition}:${key.toString('latin1')}`;
      }
    }
  }

  enqueue(delivery: Delivery): void {
    const item: Queued = { delivery, orderingKey: this.#orderingKey(delivery) };
    const key = item.orderingKey;
    if (key === null) {
      this.#ready.push(item);
    } else if (this.#busyKeys.has(key)) {
      let queue = this.#waiting.get(key);
      if (!queue) this.#waiting.set(key, (queue = new Queue()));
      queue.push(item);
    } else {
      this.#busyKeys.add(key);
      this.#ready.push(item);
    }
    this.#pump();
  }

  /** Stops starting new deliveries (shutdown). What is queued stays uncommitted and is consumed again later. */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /** Starts nothing new until {@link resume} (a rebalance is under way). */
  hold(): void {
    this.#held = true;
  }

  /** Starts queued deliveries again after {@link hold}. */
  resume(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#pump();
  }

  /** Resolves once nothing is in flight. */
  whenIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Lets the next record of the same ordering key run, or frees the key. */
  #release(key: string | null): void {
    if (key === null) return;
    const queue = this.#waiting.get(key);
    const next = queue?.shift();
    if (next) {
      this.#ready.push(next);
      if (queue!.length === 0) this.#waiting.delete(key);
    } else {
      this.#busyKeys.delete(key);
    }
  }

  #pump(): void {
    while (this.#accepting && !this.#held && this.#inFlight < this.#options.concurrency) {
      const item = this.#ready.shift();
      if (!item) return;
      this.#host.dequeued(item.delivery);
      if (item.delivery.partition.revoked) {
        this.#release(item.orderingKey);
        continue;
      }
      this.#inFlight += 1;
      this.#startedAt.set(item.delivery, Date.now());
      this.#host.instrumentation.inFlight(this.#labels, 1);
      void this.#run(item);
    }
  }

  /** Bookkeeping once a delivery is done with (processed, dead-lettered or aborted): frees its slot and key. */
  #settled(item: Queued): void {
    this.#inFlight -= 1;
    this.#startedAt.delete(item.delivery);
    this.#host.instrumentation.inFlight(this.#labels, -1);
    this.#release(item.orderingKey);
    if (this.#inFlight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.#pump();
  }

  /** Never rejects: every outcome is handled inside, then the slot is freed. */
  async #run(item: Queued): Promise<void> {
    try {
      await this.#attempts(item.delivery);
    } finally {
      this.#settled(item);
    }
  }

  async #attempts(delivery: Delivery): Promise<void> {
    const { partition, message } = delivery;
    let signals = this.#signals.get(partition);
    if (!signals) {
      const signal = AbortSignal.any([partition.signal, this.#host.deadline]);
      signals = { signal, waitSignal: AbortSignal.any([signal, this.#host.stopping]) };
      this.#signals.set(partition, signals);
    }
    const { signal, waitSignal } = signals;
    // A child logger per record is measurable on the hot path: built only when something logs.
    let child: Logger | undefined;
    const log = () => (child ??= this.#options.log.child({ partition: partition.partition, offset: message.offset }));
    const retry = this.#options.retry;
    const deadLetters = this.#options.deadLetterTopic !== null;
    const { stage, retryStages } = this.#options;
    let decoded: Decoded<unknown, unknown> | undefined;
    // On a retry stage: where the record first came from, and its attempts so far. It waits until due;
    // its partition's later records wait behind it (they are due later: one delay per topic).
    const origin: RetryOrigin | undefined = stage > 0 ? retryOrigin(message) : undefined;
    if (origin && origin.dueAt > Date.now()) {
      // Waiting to be due is not being stuck: /healthz must not count minutes of it.
      this.#startedAt.delete(delivery);
      try {
        await sleep(origin.dueAt - Date.now(), waitSignal);
      } catch {
        return; // revoked or stopping: not committed, it waits again wherever it is consumed next
      }
      this.#startedAt.set(delivery, Date.now());
    }
    const priorAttempts = origin?.attempts ?? 0;
    let firstFailureAt: Date | undefined = origin?.firstFailureAt;

    for (let attempt = 1; ; attempt += 1) {
      if (signal.aborted) return;
      // What the handler sends joins the partition's transaction under exactly-once; otherwise it is sent at
      // once and this stays the shared empty list.
      const outputs: OutgoingMessage[] = this.#options.exactlyOnce ? [] : NO_OUTPUTS;
      const started = performance.now();
      try {
        if (!decoded) {
          const result = this.topic.decode(message, { partition: partition.partition });
          decoded = result instanceof Promise ? await result : result;
        }
        const ctx = new RecordContext(delivery, decoded, priorAttempts + attempt, signal, log, outputs, this.#options.exactlyOnce ? null : this.#host);
        await this.#options.handler(decoded.value, ctx);
        // A handler that returns after its signal fired may have given up half-way: count it as not done.
        if (signal.aborted) return;
        this.#host.instrumentation.processed(this.#labels, (performance.now() - started) / 1000);
        this.#host.finished(delivery, outputs);
        return;
      } catch (thrown) {
        if (signal.aborted) return;
        const error = toError(thrown);
        firstFailureAt ??= new Date();
        this.#host.instrumentation.failed(this.#labels, error);
        const permanent = isNonRetryable(error);
        const exhausted = attempt >= retry.attempts;
        const source = {
          topic: origin?.topic ?? this.source,
          partition: origin?.partition ?? partition.partition,
          offset: origin?.offset ?? message.offset,
          firstFailureAt,
        };
        const next = retryStages[stage];
        if (exhausted && !permanent && next) {
          log().warn({ err: error, attempt: priorAttempts + attempt, retryTopic: next.topic, retryInMs: next.delayMs }, 'retries exhausted: scheduling a delayed retry');
          const later = retryMessage({ stage: next, message, origin: source, attempts: priorAttempts + attempt, error, now: Date.now() });
          if (!(await this.#sendAside(later, waitSignal, log()))) return;
          this.#host.instrumentation.retried(this.#labels);
          this.#host.finished(delivery, this.#options.exactlyOnce ? [later] : []);
          return;
        }
        if (deadLetters && (permanent || exhausted)) {
          log().error({ err: error, attempt: priorAttempts + attempt }, permanent ? 'record cannot be processed: dead-lettering' : 'retries exhausted: dead-lettering');
          const dead = deadLetterMessage({
            appId: this.#host.appId,
            deadLetterTopic: this.#options.deadLetterTopic,
            sourceTopic: source.topic,
            partition: source.partition,
            // The record as it was on its source: its own headers and offset, not those of a retry stage.
            message: origin ? { ...message, offset: source.offset, headers: withoutRetryHeaders(message.headers) } : message,
            error,
            attempts: priorAttempts + attempt,
            firstFailureAt,
          });
          if (!(await this.#sendAside(dead, waitSignal, log()))) return;
          this.#host.instrumentation.deadLettered(this.#labels);
          this.#host.finished(delivery, this.#options.exactlyOnce ? [dead] : []);
          return;
        }
        const delay = backoffDelay(retry, attempt);
        log().warn({ err: error, attempt: priorAttempts + attempt, retryInMs: delay }, 'handler failed: retrying');
        this.#host.instrumentation.retried(this.#labels);
        try {
          await sleep(delay, waitSignal);
        } catch {
          return;
        }
      }
    }
  }

  /**
   * A dead letter or a delayed retry: under exactly-once it joins the partition's transaction; otherwise
   * it is sent now, retried until it is written, since committing past a record whose copy was lost would lose it.
   */
  async #sendAside(copy: OutgoingMessage, signal: AbortSignal, log: Logger): Promise<boolean> {
    if (this.#options.exactlyOnce) return true;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#host.produce([copy]);
        return true;
      } catch (error) {
        const delay = backoffDelay(this.#options.retry, attempt);
        log.error({ err: toError(error), attempt, retryInMs: delay }, `cannot write to ${copy.topic}: retrying`);
        try {
          await sleep(delay, signal);
        } catch {
          return false;
        }
      }
    }
  }
}

/**
 * What a handler gets as `ctx`. A class rather than an object literal with closures: one is built per
 * record, so its fields live on one object and its methods on the prototype.
 */
class RecordContext implements AgentContext<unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: unknown;
  readonly headers: Headers;
  readonly attempt: number;
  readonly signal: AbortSignal;
  readonly #timestamp: string;
  readonly #log: () => Logger;
  readonly #outputs: OutgoingMessage[];
  /** Where sends go at once (at-least-once), or null when they join the partition's transaction. */
  readonly #host: AgentHost | null;
  readonly #traceparent: string | undefined;

  constructor(
    delivery: Delivery,
    decoded: Decoded<unknown, unknown>,
    attempt: number,
    signal: AbortSignal,
    log: () => Logger,
    outputs: OutgoingMessage[],
    host: AgentHost | null,
  ) {
    this.topic = delivery.partition.topic;
    this.partition = delivery.partition.partition;
    this.offset = delivery.message.offset;
    this.key = decoded.key;
    this.headers = decoded.headers;
    this.attempt = attempt;
    this.signal = signal;
    this.#timestamp = delivery.message.timestamp;
    this.#log = log;
    this.#outputs = outputs;
    this.#host = host;
    this.#traceparent = childTraceparent(decoded.headers);
  }

  get timestamp(): Date {
    return new Date(Number(this.#timestamp));
  }

  /** A child logger carrying partition and offset, built on first use. */
  get log(): Logger {
    return this.#log();
  }

  /** Not an async function: on the common path (synchronous schemas) a send costs one Promise, the producer's. */
  send<KIn, KOut, VIn, VOut>(topic: Topic<KIn, KOut, VIn, VOut>, record: OutgoingRecord<KIn, VIn>): Promise<void> {
    try {
      const traceparent = this.#traceparent;
      const withTrace: OutgoingRecord<KIn, VIn> =
        traceparent && !record.headers?.traceparent ? { ...record, headers: { ...record.headers, traceparent } } : record;
      const encoded = topic.encodeNow(withTrace);
      if (encoded instanceof Promise) return encoded.then((m) => this.#emit(m));
      return this.#emit(encoded);
    } catch (error) {
      return Promise.reject(toError(error));
    }
  }

  #emit(encoded: OutgoingMessage): Promise<void> {
    if (this.signal.aborted) throw new StreamError('ABORTED', `send to ${encoded.topic} after the record was aborted`, { cause: this.signal.reason });
    if (this.#host) return this.#host.produce([encoded]);
    this.#outputs.push(encoded);
    return Promise.resolve();
  }
}
