import { StreamError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { randomUUID } from 'node:crypto';
import type {
  GroupMetadata,
  OutgoingMessage,
  PartitionOffset,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
  TransportTransaction,
} from '../transport/transport.js';
import { backoffDelay, sleep, type ResolvedRetry } from './backoff.js';
import type { Instrumentation } from './instrumentation.js';
import { tpKey } from '../transport/shared.js';
import type { PartitionState } from './partition.js';

/** Pauses between failed attempts to claim an exactly-once partition (broker or coordinator unavailable). */
const CLAIM_RETRY: Omit<ResolvedRetry, 'attempts'> = { initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0 };

/** How the exactly-once partitions of one consumer group are run. */
export interface TransactionalPartitionsOptions {
  readonly transport: Transport;
  readonly groupId: string;
  /** A fenced partition is claimed again after two heartbeats, so that a due rebalance comes first. */
  readonly heartbeatIntervalMs: number;
  readonly log: Logger;
  readonly instrumentation: Instrumentation;
}

/** What the exactly-once machinery needs from the consumer runtime that owns the partition states. */
export interface TransactionalHost {
  /** The app's consumer, once started. */
  consumer(): TransportConsumer | undefined;
  /**
   * The member id and the generation of the assignment the partition states belong to, for offsets checked
   * by the broker (KIP-447); undefined before the first assignment or when the consumer has none.
   */
  groupMetadata(): GroupMetadata | undefined;
  /** True while `state` is the live state of its partition (not revoked, not stopping, not replaced). */
  isCurrent(state: PartitionState): boolean;
  /** Replaces the partition's state by a fresh, empty one and returns it. */
  renew(state: PartitionState): PartitionState;
  /**
   * The partition is claimed (fenced, positioned): the host restores its tables, if any, and resumes it.
   */
  claimed?(state: PartitionState): void;
  /**
   * A transaction of the partition committed with these outputs (its tables' local stores take their
   * changelog entries now: an aborted transaction's never reach them).
   */
  transactionCommitted?(state: PartitionState, outputs: readonly OutgoingMessage[]): void;
  /** A bug surfaced: the consumer runtime crashes with it. */
  crash(error: Error): void;
}

/** A partition's completed prefix to commit: its outputs before `offset`, and `offset`. */
export interface PendingCommit {
  readonly state: PartitionState;
  readonly offset: number;
}

/** Where a claim starts: after `delayMs`, at the committed offset or else `rewindTo`. */
export interface ClaimOptions {
  readonly delayMs: number;
  readonly rewindTo: number | undefined;
}

/**
 * The exactly-once side of the consumer: the claim that positions a partition before anything of it is
 * processed, the transactions that commit completed prefixes' outputs with their offsets, and what
 * happens when a transaction is fenced or its outcome is unknown. Two modes, by what the transport offers:
 *
 * - **Per partition** (kafkajs, whose transactions cannot carry the group's metadata): one transactional
 *   producer per assigned partition (`<group>.<topic>.<partition>`). Claiming initialises it, which fences
 *   the previous owner's producer; each partition commits in its own transaction.
 * - **Per consumer** (KIP-447: the consumer has {@link TransportConsumer.groupMetadata}, as on platformatic):
 *   one transactional producer (`<group>.<uuid>`) and one transaction per commit round for every
 *   partition, its offsets checked by the broker against this member's generation, which refuses a
 *   zombie's. Claiming only reads the committed offset with `requireStable` (it waits for the previous
 *   owner's pending transaction) and seeks there.
 */
export class TransactionalPartitions {
  readonly #options: TransactionalPartitionsOptions;
  readonly #host: TransactionalHost;
  readonly #transactional = new Map<string, TransportProducer>();
  /** Every transactional producer created and not yet disconnected, also those of claims still running. */
  readonly #openProducers = new Set<TransportProducer>();
  /** States whose last transaction commit has an unknown outcome, with the offset it tried to commit. */
  readonly #inDoubt = new Map<PartitionState, number>();
  #admin: Promise<TransportAdmin> | undefined;
  /** Per-consumer mode: its one transactional id and producer (connected on first use). */
  readonly #consumerTransactionalId: string;
  #consumerProducer: Promise<TransportProducer> | undefined;

  constructor(options: TransactionalPartitionsOptions, host: TransactionalHost) {
    this.#options = options;
    this.#host = host;
    this.#consumerTransactionalId = `${options.groupId}.${randomUUID()}`;
  }

  /** True when the consumer's group metadata lets one transactional producer serve every partition (KIP-447). */
  get perConsumer(): boolean {
    return typeof this.#host.consumer()?.groupMetadata === 'function';
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
  claim(state: PartitionState, options: ClaimOptions = { delayMs: 0, rewindTo: undefined }): void {
    state.claiming = true;
    const tp = { topic: state.topic, partition: state.partition };
    this.#host.consumer()?.pause([tp]);
    void this.#runClaim(state, options).catch((error: unknown) => {
      // #runClaim handles its own failures; this is a bug guard, never silent.
      this.#host.crash(new StreamError('STATE_INVALID', `claim of ${state.topic}/${state.partition} failed: ${toError(error).message}`, { cause: error }));
    });
  }

  async #runClaim(state: PartitionState, options: ClaimOptions): Promise<void> {
    const key = tpKey(state.topic, state.partition);
    const tp = { topic: state.topic, partition: state.partition };
    const log = this.#options.log;
    if (options.delayMs > 0) await sleep(options.delayMs);
    for (let attempt = 1; this.#host.isCurrent(state); attempt++) {
      let producer: TransportProducer | undefined;
      try {
        if (!this.perConsumer) {
          await this.#closeTransactional(key);
          producer = this.#options.transport.producer({ transactionalId: this.#transactionalId(state) });
          this.#openProducers.add(producer);
          await producer.connect();
        }
        const admin = await this.#adminClient();
        // Per consumer, the transport reads it stable (KIP-447): a pending transaction's offsets are waited for.
        const committed = (await admin.committedOffsets(this.#options.groupId, state.topic)).find((o) => o.partition === state.partition);
        if (!this.#host.isCurrent(state)) {
          if (producer) await this.#disconnect(producer);
          return;
        }
        if (producer) this.#transactional.set(key, producer);
        const offset = committed?.offset ?? (options.rewindTo === undefined ? undefined : String(options.rewindTo));
        if (offset !== undefined) this.#host.consumer()?.seek({ ...tp, offset });
        state.claiming = false;
        if (this.#host.claimed) this.#host.claimed(state);
        else if (!state.paused) this.#host.consumer()?.resume([tp]);
        log.debug({ topic: state.topic, partition: state.partition, offset, attempt }, 'exactly-once partition claimed');
        return;
      } catch (error) {
        if (producer) await this.#disconnect(producer);
        const delayMs = backoffDelay(CLAIM_RETRY, attempt);
        log.warn(
          { err: toError(error), topic: state.topic, partition: state.partition, attempt, retryInMs: delayMs },
          'claiming an exactly-once partition failed: will retry',
        );
        await sleep(delayMs);
      }
    }
  }

  #transactionalId(state: PartitionState): string {
    // Derived from the group, not the app id: two deployments of one app in different groups must not fence each other.
    return `${this.#options.groupId}.${state.topic}.${state.partition}`;
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

  /**
   * The partition was revoked: its producer is closed after `committing` (the commit in progress, started
   * when the rebalance began), which may still land: whoever claims the partition next waits for it or aborts it.
   */
  revoked(state: PartitionState, committing: Promise<void>): void {
    const key = tpKey(state.topic, state.partition);
    const producer = this.#transactional.get(key);
    this.#transactional.delete(key);
    // The next owner's claim initialises the transactional id again, which settles a transaction in doubt.
    this.#inDoubt.delete(state);
    if (producer) void committing.then(() => this.#disconnect(producer));
  }

  /**
   * Commits the completed prefixes: one transaction per partition, or one for all of them per consumer
   * (see the class). Resolves once every transaction ended; rejects with the first failure, the failed
   * prefixes staying for the next round.
   */
  async commit(pending: readonly PendingCommit[]): Promise<void> {
    if (this.perConsumer) return this.#commitAll(pending);
    const failed = (await Promise.allSettled(pending.map(({ state, offset }) => this.#commitPartition(state, offset)))).find(
      (r): r is PromiseRejectedResult => r.status === 'rejected',
    );
    if (failed) throw failed.reason;
  }

  /**
   * Per partition: the outputs of the completed prefix and its offset commit in one transaction, from a
   * producer whose transactional id is stable per partition, so a restarted or rebalanced instance
   * fences the old one's unfinished transaction.
   *
   * A commit that fails without a fence is ambiguous: the EndTxn may have reached the coordinator and
   * committed although its answer was lost (timeout, connection reset). Sending the outputs again in a
   * new transaction would then publish them twice. So the partition is first settled
   * ({@link #settle}): its producer is initialised again, which makes the coordinator finish (commit or
   * abort) the open transaction, and the committed offset is read back. Past the attempted offset the
   * transaction did commit and the prefix is done; otherwise it was aborted, its outputs are kept and the
   * next round commits them in a new transaction. Until a settle succeeds, no new transaction begins.
   */
  async #commitPartition(state: PartitionState, offset: number): Promise<void> {
    const key = tpKey(state.topic, state.partition);
    if (this.#inDoubt.has(state)) {
      await this.#settle(state);
      if (!this.#host.isCurrent(state) || offset <= (state.tracker.committed ?? -1)) return;
    }
    const producer = this.#transactional.get(key);
    if (!producer) return; // claimed states always have one; a revoked state's was closed
    const outputs = state.outputsBefore(offset);
    try {
      const tx = await producer.transaction();
      try {
        if (outputs.length > 0) await tx.send(outputs);
        await tx.sendOffsets(this.#options.groupId, [{ topic: state.topic, partition: state.partition, offset: String(offset) }]);
      } catch (error) {
        await tx.abort().catch(() => undefined);
        throw error;
      }
      try {
        await tx.commit();
      } catch (error) {
        if (!(error instanceof StreamError && error.context.fenced === true)) this.#inDoubt.set(state, offset);
        throw error;
      }
    } catch (error) {
      if (error instanceof StreamError && error.context.fenced === true) {
        this.#fenced(state, producer);
        return;
      }
      if (!this.#inDoubt.has(state)) throw error;
      this.#options.log.warn(
        { err: toError(error), topic: state.topic, partition: state.partition, offset },
        'exactly-once commit failed with an unknown outcome: settling it before anything is sent again',
      );
      try {
        await this.#settle(state);
      } catch (settleError) {
        throw new StreamError(
          'TRANSPORT_FAILED',
          `commit of ${state.topic}/${state.partition} up to ${offset} has an unknown outcome (${toError(error).message}) and settling it failed: ${toError(settleError).message}`,
          { cause: settleError, context: { topic: state.topic, partition: state.partition, offset } },
        );
      }
      if (offset <= (state.tracker.committed ?? -1)) return;
      throw new StreamError(
        'TRANSPORT_FAILED',
        `commit of ${state.topic}/${state.partition} up to ${offset} failed and its transaction was aborted: ${toError(error).message}`,
        { cause: error, context: { topic: state.topic, partition: state.partition, offset } },
      );
    }
    this.#committed(state, offset);
  }

  /**
   * Per consumer (KIP-447): every partition's completed prefix, outputs and offsets, in one transaction of
   * the consumer's producer, the offsets checked against the member and generation of the assignment the
   * states belong to (taken before anything is sent: if the group moved on meanwhile, the broker refuses
   * them, `groupFenced`, and nothing of the round is committed; still-current partitions try again next
   * round with their outputs kept). A commit whose outcome is unknown is settled before anything is sent
   * again, as per partition.
   */
  async #commitAll(pending: readonly PendingCommit[]): Promise<void> {
    // Taken with the states, synchronously: a rebalance after this makes the broker refuse the offsets.
    const group = this.#host.groupMetadata();
    if (this.#inDoubt.size > 0) await this.#settleAll();
    // Not `isCurrent`: a stopping app's states are not current, and its last commit must still go out.
    const commits = pending.filter(({ state, offset }) => !state.revoked && offset > (state.tracker.committed ?? -1));
    if (commits.length === 0 || group === undefined) return;
    const producer = await this.#producerOfConsumer();
    const outputs = commits.flatMap(({ state, offset }) => state.outputsBefore(offset));
    const offsets: PartitionOffset[] = commits.map(({ state, offset }) => ({ topic: state.topic, partition: state.partition, offset: String(offset) }));
    let tx: TransportTransaction;
    try {
      tx = await producer.transaction();
    } catch (error) {
      // Fenced or broken: a new producer with the same transactional id takes over next round.
      await this.#dropProducerOfConsumer();
      throw error;
    }
    try {
      if (outputs.length > 0) await tx.send(outputs);
      await tx.sendOffsets(this.#options.groupId, offsets, group);
    } catch (error) {
      await tx.abort().catch(() => this.#dropProducerOfConsumer());
      if (error instanceof StreamError && error.context.groupFenced === true) {
        throw new StreamError(
          'TRANSPORT_FAILED',
          `exactly-once commit refused: member ${group.memberId} of group ${this.#options.groupId} is no longer in generation ${group.generationId} (a rebalance moved on): nothing of this round's ${commits.length} partition(s) is committed; those still assigned retry with their next assignment's generation, the others are their next owner's`,
          { cause: error, context: { groupId: this.#options.groupId, memberId: group.memberId, generation: group.generationId, groupFenced: true } },
        );
      }
      throw error;
    }
    try {
      await tx.commit();
    } catch (error) {
      // The EndTxn may have committed although its answer was lost: settled before anything is sent again.
      for (const { state, offset } of commits) this.#inDoubt.set(state, offset);
      this.#options.log.warn(
        { err: toError(error), partitions: offsets.map((o) => `${o.topic}/${o.partition}@${o.offset}`) },
        'exactly-once commit failed with an unknown outcome: settling it before anything is sent again',
      );
      try {
        await this.#settleAll();
      } catch (settleError) {
        throw new StreamError(
          'TRANSPORT_FAILED',
          `commit of ${offsets.length} partition(s) has an unknown outcome (${toError(error).message}) and settling it failed: ${toError(settleError).message}`,
          { cause: settleError, context: { groupId: this.#options.groupId } },
        );
      }
      if (commits.every(({ state, offset }) => offset <= (state.tracker.committed ?? -1))) return;
      throw new StreamError('TRANSPORT_FAILED', `commit of ${offsets.length} partition(s) failed and its transaction was aborted: ${toError(error).message}`, {
        cause: error,
        context: { groupId: this.#options.groupId },
      });
    }
    for (const { state, offset } of commits) this.#committed(state, offset);
  }

  /** The consumer's transactional producer (per-consumer mode), connected (InitProducerId) on first use. */
  #producerOfConsumer(): Promise<TransportProducer> {
    this.#consumerProducer ??= (async () => {
      const producer = this.#options.transport.producer({ transactionalId: this.#consumerTransactionalId });
      this.#openProducers.add(producer);
      try {
        await producer.connect();
      } catch (error) {
        await this.#disconnect(producer);
        throw error;
      }
      return producer;
    })();
    const current = this.#consumerProducer;
    // A failed connect is not kept: the next round tries again.
    return current.catch((error: unknown) => {
      if (this.#consumerProducer === current) this.#consumerProducer = undefined;
      throw error;
    });
  }

  async #dropProducerOfConsumer(): Promise<void> {
    const current = this.#consumerProducer;
    this.#consumerProducer = undefined;
    const producer = await current?.catch(() => undefined);
    if (producer) await this.#disconnect(producer);
  }

  /**
   * Per consumer: settles the transaction in doubt. A new producer with the consumer's transactional id
   * makes the coordinator complete or abort it before it answers; then each partition's committed offset
   * (read stable) tells which: at or past the attempted offset, committed (outputs dropped); otherwise
   * aborted (outputs kept for the next transaction). Throws when the broker cannot be reached: the
   * partitions stay in doubt and the next round settles them first.
   */
  async #settleAll(): Promise<void> {
    const attempts = [...this.#inDoubt];
    await this.#dropProducerOfConsumer();
    await this.#producerOfConsumer();
    const admin = await this.#adminClient();
    const committedByTopic = new Map<string, Map<number, number>>();
    for (const topic of new Set(attempts.map(([state]) => state.topic))) {
      const committed = await admin.committedOffsets(this.#options.groupId, topic);
      committedByTopic.set(topic, new Map(committed.map((o) => [o.partition, Number(o.offset)])));
    }
    for (const [state, attempted] of attempts) {
      this.#inDoubt.delete(state);
      if (state.revoked) continue;
      const committed = committedByTopic.get(state.topic)?.get(state.partition);
      const outcome = committed !== undefined && committed >= attempted ? 'committed' : 'aborted';
      this.#options.log.info(
        { topic: state.topic, partition: state.partition, attempted, committed, outcome },
        'exactly-once commit of unknown outcome settled',
      );
      if (outcome === 'committed') this.#committed(state, attempted);
    }
  }

  #committed(state: PartitionState, offset: number): void {
    this.#host.transactionCommitted?.(state, state.outputsBefore(offset));
    state.dropOutputs(offset);
    state.committedAt(offset);
    this.#options.instrumentation.committed(state.topic, state.partition, offset);
  }

  /**
   * Settles a transaction whose commit has an unknown outcome: closes the partition's producer, initialises
   * a new one with the same transactional id (the coordinator completes or aborts the open transaction
   * before it answers), then reads the group's committed offset of the partition. At or past the attempted
   * offset the transaction committed: the prefix is marked committed and its outputs dropped. Otherwise it
   * was aborted and the outputs stay for the next transaction. Throws when the broker cannot be reached:
   * the partition stays in doubt and the next commit settles it first.
   */
  /** @internal true while the partition's last commit has an unknown outcome: its changelog is not quiescent. */
  inDoubt(state: PartitionState): boolean {
    return this.#inDoubt.has(state);
  }

  async #settle(state: PartitionState): Promise<void> {
    const attempted = this.#inDoubt.get(state);
    if (attempted === undefined) return;
    const key = tpKey(state.topic, state.partition);
    if (!this.#host.isCurrent(state)) {
      // Revoked or replaced: whoever claims the partition next initialises its transactional id, which
      // settles the transaction; the producer under `key` may already be that claim's.
      this.#inDoubt.delete(state);
      return;
    }
    await this.#closeTransactional(key);
    const producer = this.#options.transport.producer({ transactionalId: this.#transactionalId(state) });
    this.#openProducers.add(producer);
    let committed: string | undefined;
    try {
      await producer.connect();
      const admin = await this.#adminClient();
      committed = (await admin.committedOffsets(this.#options.groupId, state.topic)).find((o) => o.partition === state.partition)?.offset;
    } catch (error) {
      await this.#disconnect(producer);
      throw error;
    }
    this.#inDoubt.delete(state);
    if (!this.#host.isCurrent(state)) {
      await this.#disconnect(producer);
      return;
    }
    this.#transactional.set(key, producer);
    const outcome = committed !== undefined && Number(committed) >= attempted ? 'committed' : 'aborted';
    this.#options.log.info({ topic: state.topic, partition: state.partition, attempted, committed, outcome }, 'exactly-once commit of unknown outcome settled');
    if (outcome === 'committed') this.#committed(state, attempted);
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
    this.#inDoubt.delete(state);
    void this.#disconnect(producer);
    if (!this.#host.isCurrent(state)) return;
    const delayMs = 2 * this.#options.heartbeatIntervalMs;
    this.#options.log.warn(
      { topic: state.topic, partition: state.partition, retryInMs: delayMs },
      'transactional producer fenced while the partition is still assigned: dropping its uncommitted work and claiming it again from the committed offset',
    );
    state.revoke('transactional producer fenced');
    this.#options.instrumentation.revoked(state.topic, state.partition);
    const fresh = this.#host.renew(state);
    this.claim(fresh, { delayMs, rewindTo: state.firstOffset });
  }

  async #closeTransactional(key: string): Promise<void> {
    const producer = this.#transactional.get(key);
    if (!producer) return;
    this.#transactional.delete(key);
    await this.#disconnect(producer);
  }

  /** Closes every transactional producer, also those of claims still running, and the admin client. */
  async close(): Promise<void> {
    this.#transactional.clear();
    this.#consumerProducer = undefined;
    this.#inDoubt.clear();
    await Promise.all([...this.#openProducers].map((producer) => this.#disconnect(producer)));
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.then((a) => a.disconnect()).catch(() => undefined);
  }
}
