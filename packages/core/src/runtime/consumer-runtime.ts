import { settlesWithin } from '../abort.js';
import { toError } from '../errors.js';
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
} from '../transport/transport.js';
import type { PartitionHealth, PartitionLag } from '../health.js';
import type { AgentRunner } from './agent-runner.js';
import { TransactionalPartitions, type PendingCommit } from './exactly-once.js';
import type { Instrumentation } from './instrumentation.js';
import { tpKey } from '../transport/shared.js';
import { PartitionState, type BufferLimits, type Delivery } from './partition.js';
import { restorePartition, type TablesByTopic } from './restore.js';
import { backoffDelay, sleep } from './backoff.js';
import { StreamError } from '../errors.js';
import type { LocalPartition } from '../table-store.js';

/**
 * How long a revoke waits for in-flight records before its last commit: below the kafkajs transport's
 * bound on holding the rejoin (5 s), so that commit still goes out before this member rejoins.
 */
const REVOKE_DRAIN_MAX_MS = 3_000;
/**
 * How often tables' local stores are checkpointed (after a commit round): a crash restart reads at most
 * about this much of each changelog partition's tail. Each checkpoint costs an end-offset request per
 * changelog and one small LMDB write per partition, so not per commit.
 */
const CHECKPOINT_INTERVAL_MS = 5_000;

/** A paused partition is not fetched, so its high watermark is asked for at most this often (for its lag). */
const PAUSED_WATERMARK_REFRESH_MS = 1000;

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
  /** The tables of each consumed topic: their partitions are restored on assignment. */
  readonly tables?: TablesByTopic;
  /** This member heard a rebalance (its revoke or a new assignment): what it knew of other members' shares is stale. */
  readonly membershipChanged?: () => void;
}

/**
 * Owns the app's one consumer: turns fetched batches into deliveries for the agents, pauses partitions
 * whose buffer is full and resumes them when it drains, follows assignments, and commits.
 *
 * Commits are correct by construction: each partition's {@link CommitTracker} only ever offers the end of
 * the completed prefix. Offsets at or below what a partition state already tracked are redeliveries (the
 * transport refetches from the committed offset after a rebalance) and are skipped, since the state already
 * holds or finished them.
 *
 * Exactly-once topics are claimed, committed in transactions and re-claimed when fenced by
 * {@link TransactionalPartitions}; this class only tells it when.
 */
export class ConsumerRuntime implements ConsumerListener {
  readonly #options: ConsumerRuntimeOptions;
  readonly #runnersByTopic = new Map<string, AgentRunner[]>();
  readonly #partitions = new Map<string, PartitionState>();
  /** Transactional producers, claims and transactions of the exactly-once topics. */
  readonly #exactlyOnce: TransactionalPartitions;
  readonly #tables: TablesByTopic;
  #consumer: TransportConsumer | undefined;
  #generation = -1;
  #timer: NodeJS.Timeout | undefined;
  /** Reads the high watermarks of paused partitions; connected on first use. */
  #admin: Promise<TransportAdmin> | undefined;
  #watermarksAt = 0;
  #watermarks: Promise<void> = Promise.resolve();
  #committing: Promise<void> = Promise.resolve();
  /** When tables' local stores were last checkpointed (see {@link #checkpoint}). */
  #checkpointedAt = 0;
  #stopping = false;
  #crash: Error | undefined;
  /** Partition states stopped by a failed changelog write (see {@link tableWriteFailed}). */
  readonly #tableFailures = new WeakSet<PartitionState>();
  #onCrash: ((error: Error) => void) | undefined;

  constructor(options: ConsumerRuntimeOptions) {
    this.#options = options;
    this.#tables = options.tables ?? new Map();
    for (const runner of options.runners) {
      const list = this.#runnersByTopic.get(runner.source) ?? [];
      list.push(runner);
      this.#runnersByTopic.set(runner.source, list);
    }
    const { transport, consumer, log, instrumentation } = options;
    this.#exactlyOnce = new TransactionalPartitions(
      { transport, groupId: consumer.groupId, heartbeatIntervalMs: consumer.heartbeatIntervalMs, log, instrumentation },
      {
        consumer: () => this.#consumer,
        // The transport's: the generation (KIP-848: member epoch) the partitions it last assigned are committed
        // with, which moves only together with an assignment that takes partitions away (see TransportConsumer).
        groupMetadata: () => (this.#generation < 0 ? undefined : this.#consumer?.groupMetadata?.()),
        isCurrent: (state) => this.#isCurrent(state),
        renew: (state) => this.#newState(state.topic, state.partition),
        claimed: (state) => this.#claimed(state),
        transactionCommitted: (state, outputs) => {
          for (const { table, changelog } of this.#tables.get(state.topic) ?? []) table.committed(changelog, state.partition, outputs);
        },
        crash: (error) => this.onCrash(error),
      },
    );
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

  /**
   * The largest commit age over the assigned partitions: how long the partition furthest behind has had
   * uncommitted records since its last commit (0 when every partition is up to date). A partition that
   * commits never hides one that cannot.
   */
  get commitAgeMs(): number {
    const now = Date.now();
    let age = 0;
    for (const state of this.#partitions.values()) age = Math.max(age, state.commitAgeMs(now));
    return age;
  }

  async start(onCrash: (error: Error) => void): Promise<void> {
    this.#onCrash = onCrash;
    this.#consumer = this.#options.transport.consumer(this.#options.consumer);
    await this.#consumer.start(this);
    this.#timer = setInterval(() => {
      void this.commit();
      this.#refreshPausedWatermarks();
    }, this.#options.commitIntervalMs);
    this.#timer.unref();
  }

  onAssignment(assignment: Assignment): void {
    this.#options.membershipChanged?.();
    const next = new Set(assignment.partitions.map((tp) => tpKey(tp.topic, tp.partition)));
    for (const [key, state] of this.#partitions) {
      // A partition assigned again is kept (its state, its tables) only when this member owned it without
      // a break: after a rejoin as a new member another may have processed it meanwhile, and a kept table
      // would miss that owner's updates (and write stale counts from the committed offset on).
      if (next.has(key) && !assignment.rejoined) continue;
      // Revoked: in-flight handlers are aborted and nothing more of this state is committed; the new
      // owner starts from the last commit, so at worst records finished since then run again.
      state.revoke('partition revoked');
      this.#partitions.delete(key);
      this.#options.instrumentation.revoked(state.topic, state.partition);
      // After the commit in progress (started when the rebalance began), which may still land: whoever
      // claims the partition next waits for it or aborts it.
      this.#exactlyOnce.revoked(state, this.#committing);
    }
    for (const tp of assignment.partitions) {
      const key = tpKey(tp.topic, tp.partition);
      const existing = this.#partitions.get(key);
      // A state stopped by a failed changelog write is replaced like a new assignment: restored afresh.
      if (existing && !existing.revoked) {
        if (existing.paused) this.#consumer?.pause([tp]);
        continue;
      }
      const state = this.#newState(tp.topic, tp.partition);
      if (this.#options.exactlyOnceTopics.has(tp.topic)) this.#exactlyOnce.claim(state, { delayMs: 0, rewindTo: undefined });
      else if (this.#tables.has(tp.topic)) this.#restore(state);
    }
    // Only now, with every revoked partition's state aborted, may agents start what they held since
    // onRevoking: their queues still hold deliveries of the revoked partitions, which are then dropped
    // instead of started.
    for (const runner of this.#options.runners) runner.resume();
    this.#generation = assignment.generation;
    this.#options.log.info({ generation: assignment.generation, partitions: assignment.partitions.map((tp) => `${tp.topic}/${tp.partition}`) }, 'assignment');
    if (this.#stopping) this.#consumer?.pause(assignment.partitions);
  }

  onBatch(batch: FetchedBatch): number {
    const state = this.#partitions.get(tpKey(batch.topic, batch.partition));
    if (!state || this.#stopping || state.revoked || state.claiming || state.restoring) return 0;
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

  onRevoking(): Promise<void> {
    // Eager rebalancing revokes everything; commit what is done while this generation still counts, so
    // whoever gets a partition next starts after it. Once this member rejoined, the coordinator refuses
    // its commits until the next assignment, and it may wait a whole session timeout for a dead member:
    // work started now could not be committed and would run again wherever its partition goes. So agents
    // start nothing new until then; what is in flight finishes and is committed before the rejoin.
    for (const runner of this.#options.runners) runner.hold();
    this.#options.membershipChanged?.();
    return this.#commitRevoking();
  }

  /**
   * Commits what is done at once, then once more when what was in flight has finished (at most
   * {@link REVOKE_DRAIN_MAX_MS} later): without the second commit every record in flight at the revoke
   * (its handler running or its outputs awaiting acknowledgement) runs again wherever its partition goes.
   * The transport holds its rejoin until this resolves, where it can (see ConsumerListener.onRevoking).
   */
  async #commitRevoking(): Promise<void> {
    await this.commit();
    await settlesWithin(Promise.all(this.#options.runners.map((r) => r.whenIdle())), REVOKE_DRAIN_MAX_MS);
    // Checkpointed now: wherever the partitions go, a later restore here reads only what was written since.
    await this.commit('now');
  }

  /**
   * A changelog write of `state`'s partition failed: its tables in memory are ahead of their changelogs
   * from that record on. The partition is stopped here, as if revoked, before the record hears of it: none
   * of its records may finish any more (a retry would find its update applied and write nothing, and its
   * offset would commit an update no changelog holds), so its commits stay below that record, which is
   * processed again wherever the partition is restored next. Then the app fails.
   */
  tableWriteFailed(state: PartitionState, error: Error): void {
    if (this.#tableFailures.has(state)) return;
    this.#tableFailures.add(state);
    state.revoke('a changelog write failed');
    this.#consumer?.pause([{ topic: state.topic, partition: state.partition }]);
    this.onCrash(error);
  }

  onCrash(error: Error): void {
    this.#crash = error;
    this.#options.log.error({ err: error }, 'consumer crashed');
    this.#onCrash?.(error);
  }

  /** Called by runners when a delivery leaves the queue. It is still held (and counted) until it is done. */
  dequeued(delivery: Delivery): void {
    delivery.partition.dequeued();
  }

  /** Called by runners when an agent is done with a delivery: once the completed prefix moves, the partition holds less. */
  finished(delivery: Delivery, outputs: readonly OutgoingMessage[]): void {
    if (delivery.partition.done(delivery, outputs)) this.#resumeIfRoom(delivery.partition);
  }

  /** Resumes a paused partition once what it holds is below half of both limits. */
  #resumeIfRoom(state: PartitionState): void {
    if (state.paused && !state.revoked && !state.claiming && !state.restoring && !this.#stopping && state.hasRoom(this.#options.buffer)) {
      state.paused = false;
      this.#consumer?.resume([{ topic: state.topic, partition: state.partition }]);
    }
  }

  /** The live state of an assigned partition (its tables, whether they are restoring), for table queries. */
  partitionState(topic: string, partition: number): PartitionState | undefined {
    const state = this.#partitions.get(tpKey(topic, partition));
    return state && !state.revoked ? state : undefined;
  }

  /** Partitions whose tables are being restored: the app is not ready meanwhile. */
  get restoring(): number {
    let n = 0;
    for (const state of this.#partitions.values()) if (state.restoring) n += 1;
    return n;
  }

  /** An exactly-once partition was claimed: its tables are restored (the previous owner is fenced) before it resumes. */
  #claimed(state: PartitionState): void {
    if (this.#tables.has(state.topic)) {
      this.#restore(state);
      return;
    }
    if (!state.paused) this.#consumer?.resume([{ topic: state.topic, partition: state.partition }]);
  }

  /**
   * Restores the partition's tables from their changelogs, paused meanwhile, before any of its records is
   * processed. A revoke aborts the restore (the state is dropped with it); a failure is logged and retried
   * while the partition is ours.
   */
  #restore(state: PartitionState): void {
    state.restoring = true;
    const tp = { topic: state.topic, partition: state.partition };
    this.#consumer?.pause([tp]);
    const usages = this.#tables.get(state.topic) ?? [];
    const log = this.#options.log;
    const run = async (): Promise<void> => {
      for (let attempt = 1; this.#isCurrent(state); attempt++) {
        try {
          const admin = await this.#adminClient();
          const started = Date.now();
          for (const usage of usages) {
            const store = await restorePartition(this.#options.transport, admin, usage, state.partition, state.signal, this.#options.instrumentation);
            state.tables.set(usage.table, store);
            log.info(
              {
                table: usage.table.name,
                topic: state.topic,
                partition: state.partition,
                entries: store.restored,
                ...(store.loaded > 0 || usage.table.localStore ? { loaded: store.loaded } : {}),
                keys: store.entries.size,
                appliedOffset: store.appliedOffset,
                ms: Date.now() - started,
              },
              'table partition restored',
            );
          }
          if (!this.#isCurrent(state)) return;
          state.restoring = false;
          if (!state.paused) this.#consumer?.resume([tp]);
          return;
        } catch (error) {
          if (!this.#isCurrent(state)) return;
          state.tables.clear();
          const delayMs = backoffDelay({ initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0 }, attempt);
          log.warn(
            { err: toError(error), topic: state.topic, partition: state.partition, attempt, retryInMs: delayMs },
            'restoring a table partition failed: will retry',
          );
          await sleep(delayMs, state.signal).catch(() => undefined);
        }
      }
    };
    void run().catch((error: unknown) => {
      this.onCrash(new StreamError('STATE_INVALID', `restore of ${state.topic}/${state.partition} failed: ${toError(error).message}`, { cause: error }));
    });
  }

  #adminClient(): Promise<TransportAdmin> {
    this.#admin ??= (async () => {
      const admin = this.#options.transport.admin();
      await admin.connect();
      return admin;
    })();
    return this.#admin.catch((error: unknown) => {
      this.#admin = undefined;
      throw error;
    });
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

  #pause(state: PartitionState): void {
    if (state.paused) return;
    state.paused = true;
    this.#consumer?.pause([{ topic: state.topic, partition: state.partition }]);
    // Under exactly-once a full partition may be holding outputs of a completed prefix: their transaction
    // need not wait for the next interval to make room.
    if (this.#options.exactlyOnceTopics.has(state.topic) && state.tracker.peekCommit() !== undefined) void this.commit();
  }

  /**
   * A paused partition is not fetched, so the high watermark its last fetch brought goes stale while
   * producers write on: its lag would stop growing exactly when it matters. So, at most every second while
   * some partition is paused, the log ends of their topics are read. A failure is logged and tried again.
   */
  #refreshPausedWatermarks(): void {
    const now = Date.now();
    if (now - this.#watermarksAt < PAUSED_WATERMARK_REFRESH_MS || this.#stopping) return;
    const paused = [...this.#partitions.values()].filter((s) => s.paused && !s.claiming && !s.revoked);
    if (paused.length === 0) return;
    this.#watermarksAt = now;
    this.#watermarks = this.#watermarks.then(async () => {
      try {
        this.#admin ??= (async () => {
          const admin = this.#options.transport.admin();
          await admin.connect();
          return admin;
        })();
        const admin = await this.#admin;
        for (const topic of new Set(paused.map((s) => s.topic))) {
          const ends = new Map((await admin.endOffsets(topic)).map((o) => [o.partition, Number(o.offset)]));
          for (const state of paused) {
            const end = state.topic === topic ? ends.get(state.partition) : undefined;
            if (end !== undefined && end > state.highWatermark) state.highWatermark = end;
          }
        }
      } catch (error) {
        const failed = this.#admin;
        this.#admin = undefined;
        void failed?.then((a) => a.disconnect()).catch(() => undefined);
        this.#options.log.warn({ err: toError(error) }, 'reading the high watermarks of paused partitions failed: will retry');
      }
    });
  }

  /** Commits every partition's completed prefix. Calls are serialised; a failed commit is retried on the next one. */
  commit(checkpoint: 'due' | 'now' = 'due'): Promise<void> {
    this.#committing = this.#committing
      .then(() => this.#commitOnce())
      .then(() =>
        this.#checkpoint(checkpoint).catch((error: unknown) => {
          this.#options.log.warn({ err: toError(error) }, "checkpointing tables' local stores failed: will retry");
        }),
      )
      .catch((error: unknown) => {
        this.#options.log.warn({ err: toError(error) }, 'commit failed: will retry');
      });
    return this.#committing;
  }

  async #commitOnce(): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer) return;
    const plain: PartitionOffset[] = [];
    const states: PartitionState[] = [];
    const pending: PendingCommit[] = [];
    for (const state of this.#partitions.values()) {
      if (state.claiming) continue;
      const offset = state.tracker.peekCommit();
      if (offset === undefined) continue;
      if (this.#options.exactlyOnceTopics.has(state.topic)) {
        pending.push({ state, offset });
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
              states[i]!.committedAt(Number(p.offset));
              this.#options.instrumentation.committed(p.topic, p.partition, Number(p.offset));
            });
          });
    // Every transaction ends before the next round begins one on the same producer, also when another
    // commit failed (Promise.all would move on while the others are still open).
    const transactions = pending.length === 0 ? Promise.resolve() : this.#exactlyOnce.commit(pending);
    const failed = (await Promise.allSettled([plainCommit, transactions])).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // A transaction that committed dropped the outputs it carried: its partition may have room again.
    for (const state of this.#partitions.values()) this.#resumeIfRoom(state);
    if (failed) throw failed.reason;
  }

  /**
   * Checkpoints the local stores of the tables of every partition (see table-store.ts): reads each
   * changelog's end offsets, then each partition's store waits for its changelog writes in flight at that
   * moment and checkpoints the end. Runs in the commit chain, so no exactly-once transaction is open
   * meanwhile; a partition whose last commit is in doubt, restoring or claiming is left for the next round.
   * `'due'` only every {@link CHECKPOINT_INTERVAL_MS}.
   */
  async #checkpoint(when: 'due' | 'now'): Promise<void> {
    const now = Date.now();
    if (when === 'due' && now - this.#checkpointedAt < CHECKPOINT_INTERVAL_MS) return;
    const byChangelog = new Map<string, { table: string; local: LocalPartition }[]>();
    for (const state of this.#partitions.values()) {
      if (state.restoring || state.claiming || state.revoked || this.#exactlyOnce.inDoubt(state)) continue;
      for (const { table, changelog, partitions } of this.#tables.get(state.topic) ?? []) {
        if (!state.tables.has(table)) continue;
        const local = table.localPartition(changelog, state.partition, partitions);
        if (local?.checkpointable) byChangelog.set(changelog, [...(byChangelog.get(changelog) ?? []), { table: table.name, local }]);
      }
    }
    if (byChangelog.size === 0) return;
    this.#checkpointedAt = now;
    const admin = await this.#adminClient();
    const written: Promise<void>[] = [];
    for (const [changelog, locals] of byChangelog) {
      const ends = new Map((await admin.endOffsets(changelog)).map((o) => [o.partition, Number(o.offset)]));
      // Synchronously after the read: each store takes the writes in flight now as those to wait for.
      for (const { table, local } of locals) {
        const end = ends.get(local.partition);
        if (end === undefined) continue;
        written.push(
          local.checkpointAt(end, REVOKE_DRAIN_MAX_MS).then((done) => {
            if (done) this.#options.instrumentation.checkpointed?.(table, local.partition, end);
          }),
        );
      }
    }
    await Promise.all(written);
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
    await this.commit('now');
    await this.#consumer?.stop();
    await this.#exactlyOnce.close();
    await this.#watermarks;
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

  /**
   * Lag per assigned partition: the high watermark (of its last fetch; read every second while paused) minus its committed
   * offset, never minus what was fetched: records held in memory are not consumed until committed. Before
   * this assignment's first commit, the committed offset is where the partition started (its first fetched offset).
   */
  lag(): PartitionLag[] {
    return [...this.#partitions.values()].map((s) => ({ topic: s.topic, partition: s.partition, lag: partitionLag(s) }));
  }

  /** What each assigned partition holds, how far behind it is, and its oldest unfinished record. */
  partitions(): PartitionHealth[] {
    const now = Date.now();
    return [...this.#partitions.values()].map((s): PartitionHealth => {
      const oldest = s.oldestRunning();
      return {
        topic: s.topic,
        partition: s.partition,
        lag: partitionLag(s),
        highWatermark: s.highWatermark,
        committedOffset: s.tracker.committed ?? s.firstOffset,
        heldRecords: s.heldRecords,
        heldBytes: s.heldBytes,
        paused: s.paused,
        claiming: s.claiming,
        restoring: s.restoring,
        commitAgeMs: s.commitAgeMs(now),
        oldestUnfinished: oldest ? { agent: oldest.agent, offset: oldest.offset, ageMs: now - oldest.since } : undefined,
      };
    });
  }
}

/** High watermark minus the committed offset (or where the partition started, before its first commit). */
function partitionLag(s: PartitionState): number {
  const committed = s.tracker.committed ?? s.firstOffset ?? s.highWatermark;
  return Math.max(0, s.highWatermark - committed);
}
