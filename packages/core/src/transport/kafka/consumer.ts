import type { Consumer, KafkaMessage, RetryOptions } from 'kafkajs';
import { settlesWithin } from '../../abort.js';
import { StreamError, toError } from '../../errors.js';
import type { ConsumerListener, ConsumerOptions, PartitionOffset, TopicPartition, TransportConsumer } from '../transport.js';
import type { Cluster } from './cluster.js';
import { groupByTopic, toRawMessage } from './conversions.js';
import { topicMissing, transportError } from './errors.js';
import { GroupMembership } from './groups.js';
import { roundRobinWithUserData } from './assigner.js';
import { memberInfoBytes } from '../shared.js';

/** The longest a rejoin waits for the commits started by onRevoking (see #revokingCommits). */
const REVOKING_COMMIT_MAX_MS = 5_000;

type ConsumerState = 'idle' | 'starting' | 'running' | 'crashed' | 'stopping' | 'stopped';

/**
 * Consumer group member. Notes on kafkajs behaviour it relies on or works around:
 *
 * - `autoCommit: false`: kafkajs never commits; the runtime commits through {@link commit}.
 * - The generation and the pause state are this member's own ({@link GroupMembership}): kafkajs neither
 *   reports the group's generationId nor keeps pauses across its restarts.
 */
export class KafkaConsumer implements TransportConsumer {
  readonly #cluster: Cluster;
  readonly #options: ConsumerOptions;
  readonly #consumer: Consumer;
  readonly #maxRestarts: number;
  #state: ConsumerState = 'idle';
  #listener: ConsumerListener | undefined;
  #restartsSinceJoin = 0;
  readonly #membership = new GroupMembership();
  /** Counts COMMIT_OFFSETS events: tells a real commit from kafkajs' silent no-op on a stopped runner. */
  #commitsSeen = 0;
  #commits: Promise<void> = Promise.resolve();
  #startError: Error | undefined;
  #starting: Promise<void> | undefined;
  /** The commits the listener started in onRevoking, until the rejoin has waited for them. */
  #revoking: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;

  constructor(cluster: Cluster, options: ConsumerOptions, maxRestarts: number, fetchMaxWaitMs: number) {
    this.#cluster = cluster;
    this.#options = options;
    this.#maxRestarts = maxRestarts;
    const retry: RetryOptions = { retries: 5, restartOnFailure: (error) => Promise.resolve(this.#shouldRestart(error)) };
    const userData = memberInfoBytes(options.groupId, options.memberInfo);
    try {
      this.#consumer = cluster.kafka.consumer({
        groupId: options.groupId,
        sessionTimeout: options.sessionTimeoutMs,
        heartbeatInterval: options.heartbeatIntervalMs,
        rebalanceTimeout: options.rebalanceTimeoutMs,
        readUncommitted: !options.readCommitted,
        maxBytesPerPartition: options.maxBytesPerPartition,
        // Also how long kafkajs waits when every partition is paused, unless one resumes: see fetchMaxWaitMs.
        maxWaitTimeInMs: fetchMaxWaitMs,
        allowAutoTopicCreation: false,
        retry,
        ...(userData === undefined ? {} : { partitionAssigners: [roundRobinWithUserData(userData)] }),
      });
    } catch (error) {
      // kafkajs validates e.g. heartbeatInterval < sessionTimeout synchronously.
      throw new StreamError('CONFIG_INVALID', `consumer of group ${options.groupId}: ${toError(error).message}`, { cause: error });
    }
    const { GROUP_JOIN, CRASH, COMMIT_OFFSETS, REBALANCING } = this.#consumer.events;
    this.#consumer.on(REBALANCING, () => this.#onRebalancing());
    this.#consumer.on(GROUP_JOIN, (event) => this.#onGroupJoin(event.payload.memberAssignment, event.payload.memberId));
    this.#consumer.on(CRASH, (event) => this.#onKafkaCrash(event.payload.error, event.payload.restart));
    this.#consumer.on(COMMIT_OFFSETS, () => {
      this.#commitsSeen += 1;
    });
  }

  /**
   * Restart policy (kafkajs asks only for errors it considers retriable: connection loss, coordinator
   * moves, retries exhausted). A restart leaves and rejoins the group, which the runtime handles like any
   * rebalance, so riding out a broker restart or leader election this way is cheaper than failing the
   * app. But not forever: after `maxConsumerRestarts` restarts without an assignment in between, the
   * outage is reported as a crash so that health checks and operators see it. Never while starting
   * (start() rejects instead) or stopping (a restart would rejoin the group we are leaving).
   */
  #shouldRestart(_error: Error): boolean {
    if (this.#state !== 'running') return false;
    this.#restartsSinceJoin += 1;
    return this.#restartsSinceJoin <= this.#maxRestarts;
  }

  async start(listener: ConsumerListener): Promise<void> {
    if (this.#state !== 'idle') throw new StreamError('STATE_INVALID', `consumer of group ${this.#options.groupId} was already started`);
    this.#state = 'starting';
    this.#listener = listener;
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { groupId, topics } = this.#options;
    try {
      await this.#consumer.connect();
      const missing = await this.#cluster.missingTopics(topics);
      if (missing.length > 0) throw topicMissing(missing, `consumer of group ${groupId}`);
      await this.#consumer.subscribe({ topics: [...topics], fromBeginning: this.#options.fromBeginning });
      // kafkajs' run() joins the group (GROUP_JOIN → onAssignment) before it returns; a failure to join
      // does not reject it but goes through the crash handler, hence #startError.
      await this.#consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        // Patched into kafkajs (patches/): its runner awaits this between REBALANCING and the rejoin.
        beforeRejoin: () => this.#revokingCommits(),
        eachBatch: (payload) => {
          const { batch } = payload;
          this.#onBatch(batch.topic, batch.partition, batch.highWatermark, batch.messages, batch.lastOffset(), (offset) => payload.resolveOffset(offset));
          return Promise.resolve();
        },
      });
      if (this.#startError) throw transportError(`consumer of group ${groupId} could not join the group`, this.#startError, { groupId });
      if (this.#state !== 'starting') throw new StreamError('ABORTED', `consumer of group ${groupId} was stopped while starting`);
      this.#state = 'running';
    } catch (error) {
      if (this.#state === 'starting') this.#state = 'crashed';
      await this.#consumer.disconnect().catch(() => undefined);
      throw error instanceof StreamError ? error : transportError(`consumer of group ${groupId} failed to start`, error, { groupId });
    }
  }

  #onBatch(
    topic: string,
    partition: number,
    highWatermark: string,
    messages: readonly KafkaMessage[],
    lastOffset: string,
    resolveOffset: (offset: string) => void,
  ): void {
    const listener = this.#listener;
    if (!listener || (this.#state !== 'running' && this.#state !== 'starting')) return;
    // A batch fetched before the partition was paused: leave it unresolved, it is fetched again on resume.
    if (this.#membership.isPaused(topic, partition)) return;
    let accepted: number;
    try {
      accepted = listener.onBatch({ topic, partition, highWatermark, messages: messages.map(toRawMessage) });
    } catch (error) {
      this.#fail(
        new StreamError('TRANSPORT_FAILED', `onBatch threw for ${topic}/${partition}: ${toError(error).message}`, {
          cause: error,
          context: { topic, partition },
        }),
      );
      return;
    }
    accepted = Number.isFinite(accepted) ? Math.min(messages.length, Math.max(0, Math.floor(accepted))) : 0;
    if (accepted === 0) return;
    // All accepted: resolve the batch's last offset, which lies past trailing transaction markers and
    // aborted records that kafkajs filtered out of `messages`, so they are not fetched again. (kafkajs'
    // resolveOffset does this mapping itself for the last message's offset, runner.js processEachBatch;
    // we do not rely on it.)
    const last = messages[accepted - 1];
    if (accepted === messages.length) resolveOffset(lastOffset);
    else if (last) resolveOffset(last.offset);
  }

  /**
   * kafkajs emits REBALANCING (runner.js scheduleFetchManager) when a heartbeat or fetch was answered with
   * REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION / NOT_COORDINATOR, right before it rejoins; it does not
   * wait for listeners. A commit the runtime starts synchronously here is still written to the
   * coordinator's connection before the JoinGroup (which first needs a FindCoordinator round trip), and
   * the coordinator accepts commits of the current generation until every member has rejoined.
   * Rejoins kafkajs does without this event (kicked out with UNKNOWN_MEMBER_ID, changed topic metadata,
   * restarts) are seen only as the next assignment.
   */
  #onRebalancing(): void {
    if (this.#state !== 'running') return;
    try {
      const commits = this.#listener?.onRevoking();
      // Caught here: the rejoin may never come (the consumer stops), and nothing else awaits it.
      this.#revoking = commits === undefined ? undefined : Promise.resolve(commits).catch(() => undefined);
    } catch (error) {
      this.#fail(new StreamError('TRANSPORT_FAILED', `onRevoking threw: ${toError(error).message}`, { cause: error }));
    }
  }

  /**
   * Holds the rejoin until the commits onRevoking started are answered: written after the JoinGroup, they
   * would wait on the coordinator for the join to complete and then be refused (ILLEGAL_GENERATION), and
   * everything done since the previous commit would run again wherever its partitions go. Bounded, so a
   * commit that hangs cannot keep this member out of the group: at most half the rebalance timeout (the
   * time the coordinator waits for members to rejoin), and never more than 5 s.
   */
  async #revokingCommits(): Promise<void> {
    const commits = this.#revoking;
    this.#revoking = undefined;
    if (commits !== undefined) await settlesWithin(commits, Math.min(REVOKING_COMMIT_MAX_MS, this.#options.rebalanceTimeoutMs / 2));
  }

  #onGroupJoin(memberAssignment: Readonly<Record<string, number[]>>, memberId: string): void {
    const { assignment, lost, kept } = this.#membership.join(memberAssignment, memberId);
    this.#restartsSinceJoin = 0;
    // GROUP_JOIN is emitted synchronously before the first fetch of the generation, so this takes effect
    // before any record of it is fetched.
    if (lost.length > 0) this.#kafkaPauseState('resume', lost);
    if (kept.length > 0) this.#kafkaPauseState('pause', kept);
    try {
      this.#listener?.onAssignment(assignment);
    } catch (error) {
      // Throwing into kafkajs here would fail its join; report it as our crash instead.
      this.#fail(new StreamError('TRANSPORT_FAILED', `onAssignment threw: ${toError(error).message}`, { cause: error }));
    }
  }

  #onKafkaCrash(error: Error, restart: boolean): void {
    if (restart) return; // kafkajs rejoins by itself; the runtime sees the new assignment.
    if (this.#state === 'starting') {
      this.#startError = error;
      return;
    }
    if (this.#state !== 'running') return;
    this.#state = 'crashed';
    this.#listener?.onCrash(transportError(`consumer of group ${this.#options.groupId} crashed`, error, { groupId: this.#options.groupId }));
  }

  /** A listener threw: the consumer stops and the runtime hears a crash (or start() rejects). */
  #fail(error: StreamError): void {
    if (this.#state === 'starting') {
      this.#startError = error;
      return;
    }
    if (this.#state !== 'running') return;
    this.#state = 'crashed';
    void this.#consumer.disconnect().catch(() => undefined);
    this.#listener?.onCrash(error);
  }

  /** kafkajs throws when its consumer group is not there (before run, between crash and restart): our map is re-applied on the next join. */
  #kafkaPauseState(action: 'pause' | 'resume', partitions: readonly TopicPartition[]): void {
    try {
      this.#consumer[action](groupByTopic(partitions));
    } catch {
      // See above: nothing is lost, #membership's pauses are the source of truth.
    }
  }

  pause(partitions: readonly TopicPartition[]): void {
    if (partitions.length === 0) return;
    this.#membership.pause(partitions);
    this.#kafkaPauseState('pause', partitions);
  }

  resume(partitions: readonly TopicPartition[]): void {
    if (partitions.length === 0) return;
    this.#membership.resume(partitions);
    // kafkajs fetches these again from their resolved offset: right after the last accepted record.
    this.#kafkaPauseState('resume', partitions);
  }

  /**
   * kafkajs applies a seek before its next fetch from the partition's leader and drops what an earlier
   * fetch returned for it (consumerGroup.js fetch/seekOffsets); with autoCommit off it only moves the
   * position in memory (offsetManager.js seek). Batches of the partition still reaching #onBatch before
   * that are the runtime's to ignore: it keeps the partition paused until after the seek.
   */
  seek(position: PartitionOffset): void {
    if (!this.#membership.owns(position.topic, position.partition)) return;
    try {
      this.#consumer.seek({ topic: position.topic, partition: position.partition, offset: position.offset });
    } catch (error) {
      // Only before run() or between a crash and kafkajs' restart: the restart refetches committed offsets.
      throw transportError(`seek ${position.topic}/${position.partition} to ${position.offset} failed`, error, {
        topic: position.topic,
        partition: position.partition,
      });
    }
  }

  /**
   * Commits `offsets` of partitions this member owns; offsets of partitions it no longer owns are left
   * out (committing them could move the new owner's position back). Commits are serialised. Rejects when
   * kafkajs did not actually commit: its runner skips commits silently once it stopped (runner.js
   * commitOffsets returns if `!running`, also when the runner stops during a retry).
   */
  commit(offsets: readonly PartitionOffset[]): Promise<void> {
    const run = this.#commits.then(() => this.#commitNow(offsets));
    this.#commits = run.catch(() => undefined);
    return run;
  }

  async #commitNow(offsets: readonly PartitionOffset[]): Promise<void> {
    const groupId = this.#options.groupId;
    if (this.#state !== 'running')
      throw new StreamError('TRANSPORT_FAILED', `cannot commit: consumer of group ${groupId} is ${this.#state}`, { context: { groupId } });
    const owned = offsets.filter((o) => this.#membership.owns(o.topic, o.partition));
    if (owned.length === 0) return;
    const seen = this.#commitsSeen;
    try {
      await this.#consumer.commitOffsets(owned.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset })));
    } catch (error) {
      throw transportError(`commit for group ${groupId} failed`, error, { groupId });
    }
    if (this.#commitsSeen === seen) {
      throw new StreamError(
        'TRANSPORT_FAILED',
        `commit for group ${groupId} was not performed: the consumer stopped (kafkajs drops commits of a stopped consumer)`,
        {
          context: { groupId },
        },
      );
    }
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    await this.#starting?.catch(() => undefined);
    try {
      // Stops fetching, waits for the batch in progress (ours return at once), leaves the group (so the
      // others rebalance now, not after the session timeout) and closes the connections.
      await this.#consumer.disconnect();
    } catch (error) {
      throw transportError(`consumer of group ${this.#options.groupId} failed to stop`, error, { groupId: this.#options.groupId });
    } finally {
      this.#state = 'stopped';
    }
  }
}
