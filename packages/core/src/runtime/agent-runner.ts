import type { AgentHandler, Ordering } from '../agent.js';
import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkHeaderLimits, type AnyTopic, type Decoded, type ResolvedHeaderLimits } from '../topic.js';
import type { AnyTable } from '../table.js';
import { StreamError } from '../errors.js';
import type { OutgoingMessage } from '../transport/transport.js';
import { backoffDelay, sleep, type ResolvedRetry } from './backoff.js';
import { Circuits, type DependencyCheck, type OpenCircuit } from './circuit.js';
import { classifyFailure, type Classifier, type FailureClass } from './classify.js';
import { FailurePolicy, type FailureHost } from './failure-policy.js';
import { HELD, RecordContext, type SendsListener } from './handler-context.js';
import type { AgentLabels } from './instrumentation.js';
import type { Delivery, PartitionState, RunningEntry } from './partition.js';
import { Queue } from './queue.js';
import { retryOrigin, type RetryOrigin, type RetryStage } from './retry-topics.js';

/** What an agent runner needs from its app: sending and finishing (see {@link FailureHost}) and the signals below. */
export interface AgentHost extends FailureHost {
  /** Fires when shutdown starts: retry waits stop (the record stays uncommitted). */
  readonly stopping: AbortSignal;
  /** Fires when the shutdown deadline passes: handlers are told to give up. */
  readonly deadline: AbortSignal;
  /** A delivery left the buffer. */
  dequeued(delivery: Delivery): void;
  /**
   * A table's changelog write of `partition` failed after its update was applied in memory: the table can
   * no longer be trusted on this instance, so the partition must neither finish nor commit another record
   * and the app fails (a restart restores it from the changelog, exactly). Called before the record that
   * wrote sees the failure.
   */
  tableWriteFailed?(partition: PartitionState, error: Error): void;
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
  /** A record whose headers exceed these is dead-lettered without reaching the handler. */
  readonly headerLimits: ResolvedHeaderLimits;
  /** The agent's own failure classification, tried before {@link classifyFailure}. */
  readonly classify: Classifier | undefined;
  /** The app's dependency checks, by the dependency names classification gives (see `app.dependency`). */
  readonly checks: ReadonlyMap<string, DependencyCheck>;
  /**
   * Which topic this runner consumes: 0 for the agent's own topic, n for `retryStages[n - 1]` (records
   * wait there until due, then run the same handler).
   */
  readonly stage: number;
  readonly log: Logger;
  /** The agent's tables (see `AgentOptions.tables`). */
  readonly tables?: ReadonlySet<AnyTable>;
}

const NO_OUTPUTS: OutgoingMessage[] = [];
Object.freeze(NO_OUTPUTS);

/**
 * One delivery on its way through this runner, from enqueue to settled. It is also the record's entry among
 * the running ones (its own and its partition's) and what its sends' acknowledgement calls back: one object
 * per record for all three, instead of a map entry, a running-record object and a closure.
 */
class Queued implements RunningEntry, SendsListener {
  readonly delivery: Delivery;
  readonly orderingKey: string | null;
  readonly agent: string;
  /** True while the record holds a `concurrency` slot and its ordering key: until its handler returns. */
  holdsSlot = false;
  /** `Date.now()` when it started running (again, after waiting to be due or for a dependency). */
  since = 0;
  /** `performance.now()` when its current attempt started: its processing time ends at the acknowledgement. */
  attemptStarted = 0;
  /**
   * While its acknowledgements are pending: what the attempt collected for the partition's transaction
   * (exactly-once, e.g. a table's changelog; the shared empty list otherwise), finished with the record.
   */
  outputs: OutgoingMessage[] = NO_OUTPUTS;
  /** Links in its partition's list of running records (see {@link RunningEntry}). */
  partitionPrev: Queued | undefined = undefined;
  partitionNext: Queued | undefined = undefined;
  /** Links in the runner's list of running records, kept the same way. */
  runnerPrev: Queued | undefined = undefined;
  runnerNext: Queued | undefined = undefined;
  readonly #acked: (item: Queued, refused: Error | undefined) => void;

  constructor(delivery: Delivery, orderingKey: string | null, agent: string, acked: (item: Queued, refused: Error | undefined) => void) {
    this.delivery = delivery;
    this.orderingKey = orderingKey;
    this.agent = agent;
    this.#acked = acked;
  }

  get offset(): number {
    return this.delivery.offset;
  }

  sendsSettled(error: Error | undefined): void {
    this.#acked(this, error);
  }
}

/**
 * Runs one agent's handler over the deliveries of its topic: at most `concurrency` at once, in the order
 * its `ordering` demands, with retries in place and dead letters. A record is reported finished only
 * when it was processed or dead-lettered; an aborted record (revoke, shutdown deadline) is never reported,
 * so its offset is never committed and the record is consumed again.
 *
 * This class schedules (ordering keys, concurrency, hold and resume); what a failure leads to is the
 * {@link FailurePolicy}'s, and what the handler sees as `ctx` is a {@link RecordContext}.
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
  readonly #failures: FailurePolicy;
  readonly #ready = new Queue<Queued>();
  readonly #waiting = new Map<string, Queue<Queued>>();
  readonly #busyKeys = new Set<string>();
  /** Records holding a `concurrency` slot: their handler is running or they wait to retry. */
  #inFlight = 0;
  /** Records started and not settled yet: also those whose handler returned and whose sends are not acknowledged. */
  #open = 0;
  /** Records running now (not waiting to be due or for a dependency), each with its `since`: a list linked through them. */
  #runningHead: Queued | undefined;
  #runningTail: Queued | undefined;
  /** Per partition state, built once: AbortSignal.any per record costs CPU and keeps listeners on long-lived signals. */
  readonly #signals = new WeakMap<PartitionState, { signal: AbortSignal; waitSignal: AbortSignal }>();
  #accepting = true;
  /** During a rebalance: nothing new starts until the next assignment (see ConsumerRuntime.onRevoking). */
  #held = false;
  #idleWaiters: (() => void)[] = [];
  readonly #circuits: Circuits;
  readonly #tables: ReadonlySet<AnyTable>;

  constructor(options: AgentRunnerOptions, host: AgentHost) {
    this.name = options.name;
    this.topic = options.topic;
    this.source = options.stage === 0 ? options.topic.name : options.retryStages[options.stage - 1]!.topic;
    this.#options = options;
    this.#host = host;
    this.#tables = options.tables ?? new Set();
    this.#labels = { agent: options.name, topic: this.source };
    const { retry, deadLetterTopic, exactlyOnce, retryStages, stage } = options;
    this.#failures = new FailurePolicy({ source: this.source, labels: this.#labels, retry, deadLetterTopic, exactlyOnce, retryStages, stage }, host);
    this.#circuits = new Circuits(options.checks, options.log, (dependency, up) => {
      host.instrumentation.dependency(this.#labels, dependency, up);
      // Closed (by a check, a success): start the queued records. Opened: let one queued record start as the
      // probe, even when nothing else arrives or settles to pump the queue. Not from inside the caller.
      queueMicrotask(() => this.#pump());
    });
  }

  /** Dependencies this runner waits for: it starts no new record until they answer. */
  openCircuits(): OpenCircuit[] {
    return this.#circuits.snapshot();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** How long the oldest record in flight has been (0 when none): what `/healthz` calls stuck. */
  oldestInFlightMs(): number {
    let oldest = Infinity;
    for (let item = this.#runningHead; item; item = item.runnerNext) oldest = Math.min(oldest, item.since);
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
    const item = new Queued(delivery, this.#orderingKey(delivery), this.name, this.#acked);
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

  /** Resolves once nothing is in flight: no handler runs and no send of a started record awaits its acknowledgement. */
  whenIdle(): Promise<void> {
    if (this.#open === 0) return Promise.resolve();
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
    while (this.#accepting && !this.#held) {
      if (this.#ready.length === 0) return;
      // An open circuit starts nothing new but one probe record, which may go past `concurrency`.
      if (this.#circuits.isOpen ? !this.#circuits.takeProbe() : this.#inFlight >= this.#options.concurrency) return;
      const item = this.#ready.shift();
      if (!item) return;
      this.#host.dequeued(item.delivery);
      if (item.delivery.partition.revoked) {
        this.#release(item.orderingKey);
        continue;
      }
      this.#inFlight += 1;
      this.#open += 1;
      item.holdsSlot = true;
      this.#startRunning(item);
      this.#host.instrumentation.inFlight(this.#labels, 1);
      void this.#run(item);
    }
  }

  /** The record runs (again) from now on: what `oldestInFlightMs` and the partition's oldest running record see. */
  #startRunning(item: Queued): void {
    item.since = Date.now();
    this.#unlink(item);
    item.runnerPrev = this.#runningTail;
    if (this.#runningTail) this.#runningTail.runnerNext = item;
    else this.#runningHead = item;
    this.#runningTail = item;
    item.delivery.partition.started(item);
  }

  /** The record waits (to be due, or for a dependency) or is done: waiting is not being stuck. */
  #stopRunning(item: Queued): void {
    this.#unlink(item);
    item.delivery.partition.stopped(item);
  }

  #unlink(item: Queued): void {
    const { runnerPrev: prev, runnerNext: next } = item;
    // Not in the list (stopped already): nothing to unlink.
    if (prev === undefined && this.#runningHead !== item) return;
    if (prev) prev.runnerNext = next;
    else this.#runningHead = next;
    if (next) next.runnerPrev = prev;
    else this.#runningTail = prev;
    item.runnerPrev = undefined;
    item.runnerNext = undefined;
  }

  /**
   * Frees a record's `concurrency` slot and ordering key, so the next record may start: once its handler
   * returned, while its sends may still await their acknowledgement.
   */
  #freeSlot(item: Queued): void {
    if (!item.holdsSlot) return;
    item.holdsSlot = false;
    this.#inFlight -= 1;
    this.#host.instrumentation.inFlight(this.#labels, -1);
    this.#release(item.orderingKey);
    this.#pump();
  }

  /** Bookkeeping once a delivery is done with (processed, dead-lettered or aborted): frees its slot and key if still held. */
  #settled(item: Queued): void {
    this.#open -= 1;
    this.#stopRunning(item);
    if (this.#open === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.#freeSlot(item);
  }

  /**
   * The first attempt of a record on the agent's own topic: the hot path. One async frame per record, and
   * it ends when the handler returned: a record whose sends await their acknowledgement is finished by
   * {@link #acked}, holding no frame, closure or logger meanwhile. A failure (thrown, or a refused send)
   * goes on in {@link #attempts}, which retries, forwards or dead-letters it. Never rejects; every path
   * ends in {@link #settled} exactly once (here, in {@link #acked} or in {@link #attempts}).
   */
  async #run(item: Queued): Promise<void> {
    // On a retry stage a record may wait to be due first, and its retry origin counts: the general path.
    if (this.#options.stage > 0) return this.#attempts(item, undefined);
    const { delivery } = item;
    const { partition } = delivery;
    const { signal } = this.#signalsOf(partition);
    if (this.#aborted(partition)) return this.#settled(item);
    try {
      const result = this.#decode(delivery);
      const decoded = result instanceof Promise ? await result : result;
      const atOnce = !this.#options.exactlyOnce;
      // What the handler sends joins the partition's transaction under exactly-once; otherwise it is sent at
      // once and this stays the shared empty list.
      const outputs: OutgoingMessage[] = atOnce ? NO_OUTPUTS : [];
      item.attemptStarted = performance.now();
      const ctx = this.#context(delivery, decoded, 1, signal, outputs);
      const handled = this.#options.handler(decoded.value, ctx);
      // A record held open (a batch's, a stream's) goes on at once: no microtask, no frame suspended.
      if (handled !== HELD) await handled;
      // A handler that returns after its signal fired may have given up half-way: count it as not done.
      if (this.#aborted(partition)) return this.#settled(item);
      if (this.#tables.size > 0) this.#writeChangelogs(ctx, outputs, atOnce, partition);
      const sends = ctx.pendingSends;
      if (sends) {
        // The next record need not wait for the broker; this one finishes (and may commit) once it acknowledged,
        // or fails if a send was refused (maybe already, while the handler still ran: told at once then).
        // A record held (waiting in its batch) keeps its slot: `concurrency` bounds a batch agent's records.
        if (!sends.holdsSlot) this.#freeSlot(item);
        item.outputs = outputs;
        sends.whenSettled(item);
        return;
      }
      this.#succeeded(item, outputs);
    } catch (thrown) {
      if (this.#aborted(partition)) return this.#settled(item);
      return this.#attempts(item, { thrown });
    }
    this.#settled(item);
  }

  /**
   * Every send of a record whose handler returned was acknowledged, or one was refused (see {@link #run}).
   * An arrow property: built once per runner, not once per record.
   */
  readonly #acked = (item: Queued, refused: Error | undefined): void => {
    const { outputs } = item;
    item.outputs = NO_OUTPUTS;
    if (this.#aborted(item.delivery.partition)) return this.#settled(item);
    if (refused) {
      // The record failed after all: retried, forwarded or dead-lettered by its class, like a handler's throw.
      void this.#attempts(item, { thrown: refused });
      return;
    }
    try {
      this.#succeeded(item, outputs);
    } catch (thrown) {
      void this.#attempts(item, { thrown });
      return;
    }
    this.#settled(item);
  };

  /**
   * What the partition's record signal says (revoked, or the shutdown deadline passed), read from its two
   * sources: reading the composite signal refreshes it from them each time, a cost on the per-record path.
   */
  #aborted(partition: PartitionState): boolean {
    return partition.revoked || this.#host.deadline.aborted;
  }

  /** Checks a delivery's headers against the limits and decodes it: throws (or rejects) for a record that cannot be. */
  #decode(delivery: Delivery): Decoded<unknown, unknown> | Promise<Decoded<unknown, unknown>> {
    const { partition, message } = delivery;
    checkHeaderLimits(this.topic.name, message.headers, this.#options.headerLimits, { partition: partition.partition, offset: message.offset });
    return this.topic.decode(message, { partition: partition.partition });
  }

  /**
   * The handler's `ctx` for one attempt: sends go at once (their acknowledgements tracked) at least once, or
   * into `outputs`, the partition's transaction, under exactly-once.
   */
  #context(delivery: Delivery, decoded: Decoded<unknown, unknown>, attempt: number, signal: AbortSignal, outputs: OutgoingMessage[]): RecordContext {
    const atOnce = !this.#options.exactlyOnce;
    return new RecordContext(delivery, decoded, attempt, signal, this.#options.log, outputs, atOnce ? this.#host : null, atOnce, this.#tables);
  }

  /** The record was processed: it finishes (the caller settles it; a throw here fails it instead). */
  #succeeded(item: Queued, outputs: OutgoingMessage[]): void {
    this.#host.instrumentation.processed(this.#labels, (performance.now() - item.attemptStarted) / 1000);
    this.#circuits.succeeded();
    this.#host.finished(item.delivery, outputs);
  }

  /**
   * Attempts the handler until it succeeds, or the failure policy forwards, dead-letters or gives up the
   * record: every attempt on a retry stage, and the attempts after the first failed on the agent's own
   * topic (`first` holds that failure). Never rejects: every outcome is handled inside, then the record is
   * settled.
   */
  async #attempts(item: Queued, first: { readonly thrown: unknown } | undefined): Promise<void> {
    const waiting: { on: string | undefined } = { on: undefined };
    try {
      await this.#attemptsWaiting(item, waiting, first);
    } finally {
      if (waiting.on !== undefined) this.#circuits.leave(waiting.on);
      this.#settled(item);
    }
  }

  /** The partition's handler signal (revoke or deadline) and wait signal (also shutdown). */
  #signalsOf(partition: PartitionState): { signal: AbortSignal; waitSignal: AbortSignal } {
    let signals = this.#signals.get(partition);
    if (!signals) {
      const signal = AbortSignal.any([partition.signal, this.#host.deadline]);
      signals = { signal, waitSignal: AbortSignal.any([signal, this.#host.stopping]) };
      this.#signals.set(partition, signals);
    }
    return signals;
  }

  /**
   * On a retry stage a record waits until it is due; its partition's later records wait behind it (they
   * are due later: one delay per topic). False when revoked or stopping meanwhile: not committed, it
   * waits again wherever it is consumed next.
   */
  async #waitUntilDue(item: Queued, origin: RetryOrigin, waitSignal: AbortSignal): Promise<boolean> {
    // Waiting to be due is not being stuck: /healthz must not count minutes of it.
    this.#stopRunning(item);
    try {
      await sleep(origin.dueAt - Date.now(), waitSignal);
    } catch {
      return false;
    }
    this.#startRunning(item);
    return true;
  }

  /**
   * Applies the record's table writes and sends their changelog entries: under exactly-once into the
   * partition's transaction, else at once, the record finishing (and its offset committing) only once they
   * are acknowledged. Each table's entries of one record go in one produce to one partition: all or none.
   */
  #writeChangelogs(ctx: RecordContext, outputs: OutgoingMessage[], atOnce: boolean, state: PartitionState): void {
    const partition = state.partition;
    for (const { table, messages } of ctx.flushTables()) {
      if (!atOnce) {
        outputs.push(...messages);
        continue;
      }
      const ack = table.write(partition, messages, (m) => this.#host.produce(m));
      // Registered before the record awaits the acknowledgement, so that the partition is stopped before the
      // record sees the failure: retried, its flush would find the update applied (the store is ahead of the
      // changelog) and write nothing, and it would finish and commit an update no changelog holds.
      ack.catch((error: unknown) => {
        this.#host.tableWriteFailed?.(
          state,
          new StreamError(
            'TRANSPORT_FAILED',
            `table ${table.name}: changelog write of ${this.source}/${partition} at offset ${ctx.offset} failed: ${toError(error).message}`,
            {
              cause: error,
              context: { table: table.name, partition, offset: ctx.offset },
            },
          ),
        );
      });
      ctx.awaitAck(ack);
    }
  }

  #classify(error: Error, delivery: Delivery): FailureClass {
    const classify = this.#options.classify;
    if (classify) {
      const { partition, message } = delivery;
      try {
        const own = classify(error, { topic: this.source, partition: partition.partition, offset: message.offset, key: message.key, headers: message.headers });
        if (own) return own;
      } catch (thrown) {
        this.#options.log.error({ err: toError(thrown) }, 'classify threw: using the default classification');
      }
    }
    return classifyFailure(error);
  }

  /** The attempts of {@link #attempts}, with `waiting.on` naming the dependency whose circuit the record waits on. */
  async #attemptsWaiting(item: Queued, waiting: { on: string | undefined }, first: { readonly thrown: unknown } | undefined): Promise<void> {
    const { delivery } = item;
    const stopWaiting = () => {
      if (waiting.on === undefined) return;
      this.#circuits.leave(waiting.on);
      waiting.on = undefined;
    };
    const { partition, message } = delivery;
    const { signal, waitSignal } = this.#signalsOf(partition);
    // A child logger per record is measurable on the hot path: built only when something logs.
    let child: Logger | undefined;
    const log = () => (child ??= this.#options.log.child({ partition: partition.partition, offset: message.offset }));
    // On a retry stage: where the record first came from, and its attempts so far.
    const origin: RetryOrigin | undefined = this.#options.stage > 0 ? retryOrigin(message) : undefined;
    // Only a record that is not due yet awaits: the others reach their handler without a microtask in between.
    if (!first && origin && origin.dueAt > Date.now() && !(await this.#waitUntilDue(item, origin, waitSignal))) return;
    const priorAttempts = origin?.attempts ?? 0;
    let firstFailureAt: Date | undefined = origin?.firstFailureAt;
    let decoded: Decoded<unknown, unknown> | undefined;
    // Attempts that count against `retry.attempts`: every failure of the record's own, and a dependency
    // failure only when the dependency was seen answering since the record's previous failure on it: its
    // check passed and no other record failed on it, or more other records were processed than failed on it.
    let counted = 0;
    let dependencyWaits = 0;
    let since: { successes: number; failures: number } | undefined;
    let checkPassed = false;

    for (let attempt = 1; ; attempt += 1) {
      if (signal.aborted) return;
      // What the handler sends joins the partition's transaction under exactly-once; otherwise it is sent at
      // once and this stays the shared empty list.
      const outputs: OutgoingMessage[] = this.#options.exactlyOnce ? [] : NO_OUTPUTS;
      item.attemptStarted = performance.now();
      try {
        // The first attempt already failed in #run: it goes straight to the failure handling below.
        if (first) {
          const { thrown } = first;
          first = undefined;
          throw thrown;
        }
        if (!decoded) {
          const result = this.#decode(delivery);
          decoded = result instanceof Promise ? await result : result;
        }
        const atOnce = !this.#options.exactlyOnce;
        const ctx = this.#context(delivery, decoded, priorAttempts + attempt, signal, outputs);
        await this.#options.handler(decoded.value, ctx);
        // A handler that returns after its signal fired may have given up half-way: count it as not done.
        if (signal.aborted) return;
        if (this.#tables.size > 0) this.#writeChangelogs(ctx, outputs, atOnce, partition);
        const sends = ctx.pendingSends;
        if (sends) {
          // The next record need not wait for the broker; this one finishes (and may commit) once it acknowledged.
          if (sends.pending > 0 && !sends.holdsSlot) this.#freeSlot(item);
          const refused = await sends.settled();
          if (signal.aborted) return;
          if (refused) throw refused;
        }
        this.#host.instrumentation.processed(this.#labels, (performance.now() - item.attemptStarted) / 1000);
        stopWaiting();
        this.#circuits.succeeded();
        this.#host.finished(delivery, outputs);
        return;
      } catch (thrown) {
        if (signal.aborted) return;
        firstFailureAt ??= new Date();
        const error = toError(thrown);
        const failureClass = this.#classify(error, delivery);
        if (failureClass.kind === 'dependency') {
          const { dependency } = failureClass;
          const circuits = this.#circuits;
          // Others failing on it meanwhile (an outage, a missing index) means it is down for everyone.
          const othersFailed = since === undefined ? 0 : circuits.failures(dependency) - since.failures;
          const othersDone = since === undefined ? 0 : circuits.successes - since.successes;
          const answering = since !== undefined && ((checkPassed && othersFailed === 0) || othersDone > othersFailed);
          checkPassed = false;
          circuits.failed(dependency, error, !answering);
          since = { successes: circuits.successes, failures: circuits.failures(dependency) };
          if (!answering) {
            // The dependency's fault: wait it out, spending none of the record's attempts.
            dependencyWaits += 1;
            this.#host.instrumentation.failed(this.#labels, error);
            if (waiting.on !== dependency) {
              stopWaiting();
              circuits.enter(dependency);
              waiting.on = dependency;
            }
            const delayMs = backoffDelay(this.#options.retry, dependencyWaits);
            log().debug({ err: error, dependency, attempt: priorAttempts + attempt, retryInMs: delayMs }, 'dependency unavailable: waiting');
            // Waiting out a dependency is not being stuck: /healthz must not restart a process for an outage.
            this.#stopRunning(item);
            try {
              await sleep(delayMs, waitSignal);
            } catch {
              return;
            }
            checkPassed = (await circuits.check(dependency)) === true;
            this.#startRunning(item);
            continue;
          }
          // The dependency answers others but not this record: the record's fault after all.
        }
        stopWaiting();
        counted += 1;
        const failure = { delivery, error, failureClass, attempt: counted, priorAttempts, origin, firstFailureAt, waitSignal, log };
        if ((await this.#failures.handle(failure)) === 'done') return;
      }
    }
  }
}
