import { StreamError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  Assignment,
  ConsumerListener,
  ConsumerOptions,
  FetchedBatch,
  OutgoingMessage,
  PartitionOffset,
  TopicPartition,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
} from '../transport/transport.js';
import type { AgentRunner } from './agent-runner.js';
import { backoffDelay, sleep, type ResolvedRetry } from './backoff.js';
import type { Instrumentation } from './instrumentation.js';
import { PartitionState, type BufferLimits, type Delivery } from './partition.js';

export interface ConsumerRuntimeOptions {
  readonly appId: string;
  readonly transport: Transport;
  readonly consumer: ConsumerOptions;
  readonly runners: readonly AgentRunner[];
  readonly buffer: BufferLimits;
  readonly commitIntervalMs: number;
  readonly log: Logger;
  readonly instrumentation: Instrumentation;
  /** Topics whose offsets commit inside transactions together with their agents' outputs. */
  readonly exactlyOnceTopics: ReadonlySet<string>;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** Pauses between failed attempts to claim an exactly-once partition (broker or coordinator unavailable). */
const CLAIM_RETRY: Omit<ResolvedRetry, 'attempts'> = { initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0 };

/**
 * Owns the app's one consumer: turns fetched batches into deliveries for the agents, pauses partitions
 * whose buffer is full and resumes them when it drains, follows assignments, and commits.
 *
 * Commits are correct by construction: each partition's {@link CommitTracker} only ever offers the end of
 * the completed prefix. Offsets at or below what a partition state already tracked are redeliveries (the
 * transport refetches from the committed offset after a rebalance) and are skipped, since the state already
 * holds or finished them.
 */
export class ConsumerRuntime implements ConsumerListener {
  readonly #options: ConsumerRuntimeOptions;
  readonly #runnersByTopic = new Map<string, AgentRunner[]>();
  readonly #partitions = new Map<string, PartitionState>();
  readonly #transactional = new Map<string, TransportProducer>();
  /** Every transactional producer created and not yet disconnected, also those of claims still running. */
  readonly #openProducers = new Set<TransportProducer>();
  #admin: Promise<TransportAdmin> | undefined;
  #consumer: TransportConsumer | undefined;
  #generation = -1;
  #timer: NodeJS.Timeout | undefined;
  #committing: Promise<void> = Promise.resolve();
  #stopping = false;
  #crash: Error | undefined;
  #onCrash: ((error: Error) => void) | undefined;
  #lastCommitAt = Date.now();

  constructor(options: ConsumerRuntimeOptions) {
    this.#options = options;
    for (const runner of options.runners) {
      const list = this.#runnersByTopic.get(runner.source) ?? [];
      list.push(runner);
      this.#runnersByTopic.set(runner.source, list);
    }
  }

  /** The current generation's partitions. */
  get assignment(): TopicPartition[] {
    return [...this.#partitions.values()].map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /** True once the group gave this member its first assignment. */
  get joined(): boolean {
    return this.#generation >= 0;
  }

  get crashed(): Error | undefined {
    return this.#crash;
  }

  /** Milliseconds since the last successful commit (or since start). */
  get commitAgeMs(): number {
    return Date.now() - this.#lastCommitAt;
  }

  async start(onCrash: (error: Error) => void): Promise<void> {
    this.#onCrash = onCrash;
    this.#consumer = this.#options.transport.consumer(this.#options.consumer);
    await this.#consumer.start(this);
    this.#timer = setInterval(() => void this.commit(), this.#options.commitIntervalMs);
    this.#timer.unref();
  }

  onAssignment(assignment: Assignment): void {
    for (const runner of this.#options.runners) runner.resume();
    const next = new Set(assignment.partitions.map((tp) => tpKey(tp.topic, tp.partition)));
    for (const [key, state] of this.#partitions) {
      if (next.has(key)) continue;
      // Revoked: in-flight handlers are aborted and nothing more of this state is committed; the new
      // owner starts from the last commit, so at worst records finished since then run again.
      state.revoke('partition revoked');
      this.#partitions.delete(key);
      this.#options.instrumentation.revoked(state.topic, state.partition);
      // After the commit in progress (started when the rebalance began), which may still land: whoever
      // claims the partition next waits for it or aborts it.
      const producer = this.#transactional.get(key);
      this.#transactional.delete(key);
      if (producer) void this.#committing.then(() => this.#disconnect(producer));
    }
    for (const tp of assignment.partitions) {
      const key = tpKey(tp.topic, tp.partition);
      const existing = this.#partitions.get(key);
      if (existing) {
        if (existing.paused) this.#consumer?.pause([tp]);
        continue;
      }
      const state = this.#newState(tp.topic, tp.partition);
      if (this.#options.exactlyOnceTopics.has(tp.topic)) this.#claim(state, { delayMs: 0, rewindTo: undefined });
    }
    this.#generation = assignment.generation;
    this.#options.log.info(
      { generation: assignment.generation, partitions: assignment.partitions.map((tp) => `${tp.topic}/${tp.partition}`) },
      'assignment',
    );
    if (this.#stopping) this.#consumer?.pause(assignment.partitions);
  }

  onBatch(batch: FetchedBatch): number {
    const state = this.#partitions.get(tpKey(batch.topic, batch.partition));
    if (!state || this.#stopping || state.claiming) return 0;
    state.highWatermark = Number(batch.highWatermark);
    this.#options.instrumentation.fetched(batch.topic, batch.partition, state.highWatermark);
    const runners = this.#runnersByTopic.get(batch.topic) ?? [];
    const limits = this.#options.buffer;
    // A partition with room takes the whole batch: declining its tail would make the transport fetch those
    // bytes again. So a buffer holds at most its limit plus one fetch (maxBytesPerPartition) per partition.
    if (state.isFull(limits)) {
      this.#pause(state);
      return 0;
    }
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (offset <= state.tracker.lastTracked) continue;
      const delivery = state.accept(message, offset);
      for (const runner of runners) runner.enqueue(delivery);
    }
    if (state.isFull(limits)) this.#pause(state);
    return batch.messages.length;
  }

  onRevoking(): void {
    // Eager rebalancing revokes everything; commit what is done while this generation still counts, so
    // whoever gets a partition next starts after it. Until the next assignment the coordinator refuses
    // commits (REBALANCE_IN_PROGRESS), and it may wait a whole session timeout for a dead member: work
    // started now could not be committed and would run again wherever its partition goes. So agents
    // start nothing new until then; what is in flight finishes.
    for (const runner of this.#options.runners) runner.hold();
    void this.commit();
  }

  onCrash(error: Error): void {
    this.#crash = error;
    this.#options.log.error({ err: error }, 'consumer crashed');
    this.#onCrash?.(error);
  }

  /** Called by runners when a delivery leaves the buffer. */
  dequeued(delivery: Delivery): void {
    const state = delivery.partition;
    state.dequeued(delivery);
    if (state.paused && !state.revoked && !state.claiming && !this.#stopping && state.hasRoom(this.#options.buffer)) {
      state.paused = false;
      this.#consumer?.resume([{ topic: state.topic, partition: state.partition }]);
    }
  }

  /** Called by runners when an agent is done with a delivery. */
  finished(delivery: Delivery, outputs: readonly OutgoingMessage[]): void {
    delivery.partition.done(delivery, outputs);
  }

  #newState(topic: string, partition: number): PartitionState {
    const state = new PartitionState(topic, partition, this.#runnersByTopic.get(topic)?.length ?? 0);
    this.#partitions.set(tpKey(topic, partition), state);
    return state;
  }

  /** True while `state` is the live state of its partition. */
  #isCurrent(state: PartitionState): boolean {
    return !state.revoked && !this.#stopping && this.#partitions.get(tpKey(state.topic, state.partition)) === state;
  }

  /**
   * Claims an exactly-once partition before anything of it is processed. kafkajs commits offsets inside
   * transactions without the group generation (no KIP-447), so the previous owner's last transaction,
   * offsets included, can still be in flight when the group hands the partition to us, and the committed
   * offset we would start from is then about to move. So the partition stays paused while we
   * 1. initialise its transactional producer (`<group>.<topic>.<partition>`): the coordinator first
   *    completes or aborts the previous owner's open transaction and fences that producer for good;
   * 2. read the group's committed offset for it now, which is final, and seek there (or to `rewindTo`
   *    when nothing was ever committed);
   * and only then fetch and process it. Failures are retried until the partition is no longer ours.
   */
  #claim(state: PartitionState, options: { delayMs: number; rewindTo: number | undefined }): void {
    state.claiming = true;
    const tp = { topic: state.topic, partition: state.partition };
    this.#consumer?.pause([tp]);
    void this.#runClaim(state, options).catch((error: unknown) => {
      // #runClaim handles its own failures; this is a bug guard, never silent.
      this.onCrash(new StreamError('STATE_INVALID', `claim of ${state.topic}/${state.partition} failed: ${toError(error).message}`, { cause: error }));
    });
  }

  async #runClaim(state: PartitionState, options: { delayMs: number; rewindTo: number | undefined }): Promise<void> {
    const key = tpKey(state.topic, state.partition);
    const tp = { topic: state.topic, partition: state.partition };
    const log = this.#options.log;
    if (options.delayMs > 0) await sleep(options.delayMs);
    for (let attempt = 1; this.#isCurrent(state); attempt++) {
      let producer: TransportProducer | undefined;
      try {
        await this.#closeTransactional(key);
        producer = this.#options.transport.producer({ transactionalId: this.#transactionalId(state) });
        this.#openProducers.add(producer);
        await producer.connect();
        const admin = await this.#adminClient();
        const committed = (await admin.committedOffsets(this.#options.consumer.groupId, state.topic)).find((o) => o.partition === state.partition);
        if (!this.#isCurrent(state)) {
          await this.#disconnect(producer);
          return;
        }
        this.#transactional.set(key, producer);
        const offset = committed?.offset ?? (options.rewindTo === undefined ? undefined : String(options.rewindTo));
        if (offset !== undefined) this.#consumer?.seek({ ...tp, offset });
        state.claiming = false;
        if (!state.paused) this.#consumer?.resume([tp]);
        log.debug({ topic: state.topic, partition: state.partition, offset, attempt }, 'exactly-once partition claimed');
        return;
      } catch (error) {
        if (producer) await this.#disconnect(producer);
        const delayMs = backoffDelay(CLAIM_RETRY, attempt);
        log.warn({ err: toError(error), topic: state.topic, partition: state.partition, attempt, retryInMs: delayMs }, 'claiming an exactly-once partition failed: will retry');
        await sleep(delayMs);
      }
    }
  }

  #transactionalId(state: PartitionState): string {
    // Derived from the group, not the app id: two deployments of one app in different groups must not fence each other.
    return `${this.#options.consumer.groupId}.${state.topic}.${state.partition}`;
  }

  #adminClient(): Promise<TransportAdmin> {
    this.#admin ??= (async () => {
      const admin = this.#options.transport.admin();
      await admin.connect();
      return admin;
    })();
    // A failed connect is not cached: the next claim attempt tries again.
    return this.#admin.catch((error: unknown) => {
      this.#admin = undefined;
      throw error;
    });
  }

  async #disconnect(producer: TransportProducer): Promise<void> {
    this.#openProducers.delete(producer);
    await producer.disconnect().catch(() => undefined);
  }

  #pause(state: PartitionState): void {
    if (state.paused) return;
    state.paused = true;
    this.#consumer?.pause([{ topic: state.topic, partition: state.partition }]);
  }

  /** Commits every partition's completed prefix. Calls are serialised; a failed commit is retried on the next one. */
  commit(): Promise<void> {
    this.#committing = this.#committing.then(() => this.#commitOnce()).catch((error: unknown) => {
      this.#options.log.warn({ err: toError(error) }, 'commit failed: will retry');
    });
    return this.#committing;
  }

  async #commitOnce(): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer) return;
    const plain: PartitionOffset[] = [];
    const states: PartitionState[] = [];
    const transactions: Promise<void>[] = [];
    for (const state of this.#partitions.values()) {
      if (state.claiming) continue;
      const offset = state.tracker.peekCommit();
      if (offset === undefined) continue;
      if (this.#options.exactlyOnceTopics.has(state.topic)) {
        transactions.push(this.#commitTransaction(state, offset));
      } else {
        plain.push({ topic: state.topic, partition: state.partition, offset: String(offset) });
        states.push(state);
      }
    }
    const plainCommit =
      plain.length === 0
        ? Promise.resolve()
        : consumer.commit(plain).then(() => {
            plain.forEach((p, i) => {
              states[i]!.tracker.markCommitted(Number(p.offset));
              this.#options.instrumentation.committed(p.topic, p.partition, Number(p.offset));
            });
          });
    // Every partition's transaction ends before the next round begins one on the same producer, also
    // when another commit failed (Promise.all would move on while the others are still open).
    const failed = (await Promise.allSettled([plainCommit, ...transactions])).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (plain.length > 0 || transactions.length > 0) this.#lastCommitAt = Date.now();
  }

  /**
   * Exactly-once: the outputs of the completed prefix and its offset commit in one transaction, from a
   * producer whose transactional id is stable per partition, so a restarted or rebalanced instance
   * fences the old one's unfinished transaction.
   */
  async #commitTransaction(state: PartitionState, offset: number): Promise<void> {
    const key = tpKey(state.topic, state.partition);
    const producer = this.#transactional.get(key);
    if (!producer) return; // claimed states always have one; a revoked state's was closed
    const outputs = state.outputsBefore(offset);
    try {
      const tx = await producer.transaction();
      try {
        if (outputs.length > 0) await tx.send(outputs);
        await tx.sendOffsets(this.#options.consumer.groupId, [{ topic: state.topic, partition: state.partition, offset: String(offset) }]);
        await tx.commit();
      } catch (error) {
        await tx.abort().catch(() => undefined);
        throw error;
      }
    } catch (error) {
      if (error instanceof StreamError && error.context.fenced === true) {
        this.#fenced(state, producer);
        return;
      }
      throw error;
    }
    state.dropOutputs(offset);
    state.tracker.markCommitted(offset);
    this.#options.instrumentation.committed(state.topic, state.partition, offset);
  }

  /**
   * The partition's transactional producer was fenced while the group still gives us the partition. A
   * member that lost it without noticing yet (a zombie) would learn so at its next heartbeat and see the
   * partition go in the next assignment; a producer also gets fenced when the coordinator aborted its
   * transaction (transaction timeout, coordinator restart). Either way nothing of this state can be
   * committed any more: it is dropped (in-flight handlers aborted, their outputs discarded) and the
   * partition claimed again from its committed offset, after a pause long enough for a rebalance to come
   * first if one is due.
   */
  #fenced(state: PartitionState, producer: TransportProducer): void {
    const key = tpKey(state.topic, state.partition);
    if (this.#transactional.get(key) === producer) this.#transactional.delete(key);
    void this.#disconnect(producer);
    if (!this.#isCurrent(state)) return;
    const delayMs = 2 * this.#options.consumer.heartbeatIntervalMs;
    this.#options.log.warn(
      { topic: state.topic, partition: state.partition, retryInMs: delayMs },
      'transactional producer fenced while the partition is still assigned: dropping its uncommitted work and claiming it again from the committed offset',
    );
    state.revoke('transactional producer fenced');
    this.#options.instrumentation.revoked(state.topic, state.partition);
    const fresh = this.#newState(state.topic, state.partition);
    this.#claim(fresh, { delayMs, rewindTo: state.firstOffset });
  }

  async #closeTransactional(key: string): Promise<void> {
    const producer = this.#transactional.get(key);
    if (!producer) return;
    this.#transactional.delete(key);
    await this.#disconnect(producer);
  }

  /** Stops taking records: every partition is paused and agents start nothing new. */
  beginStop(): void {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const runner of this.#options.runners) runner.stopAccepting();
    const all = this.assignment;
    if (all.length > 0) this.#consumer?.pause(all);
  }

  /** Final commit, then leaves the group and closes transactional producers. */
  async finishStop(): Promise<void> {
    await this.commit();
    await this.#consumer?.stop();
    this.#transactional.clear();
    await Promise.all([...this.#openProducers].map((producer) => this.#disconnect(producer)));
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.then((a) => a.disconnect()).catch(() => undefined);
  }

  /** Deliveries buffered (accepted, not started) across partitions: bounded by the buffer limits. */
  buffered(): number {
    let total = 0;
    for (const state of this.#partitions.values()) total += state.queued;
    return total;
  }

  /** Lag per assigned partition: log end minus committed (or minus what is being processed). */
  lag(): { topic: string; partition: number; lag: number }[] {
    return [...this.#partitions.values()].map((s) => ({
      topic: s.topic,
      partition: s.partition,
      lag: Math.max(0, s.highWatermark - (s.tracker.committed ?? s.tracker.lastTracked + 1)),
    }));
  }
}
