import type { ClusterMetadata, Consumer, ConsumerGroupJoinPayload, GroupAssignment } from '@platformatic/kafka';
import { platformatic } from './client.js';
import { settlesWithin } from '../../abort.js';
import { StreamError, toError } from '../../errors.js';
import { byTopicPartition, memberInfoBytes, tpKey } from '../shared.js';
import type { Assignment, ConsumerListener, ConsumerOptions, GroupMetadata, PartitionOffset, TopicPartition, TransportConsumer } from '../transport.js';
import type { Cluster } from './cluster.js';
import { hasProtocolError, topicMissing, transportError } from './errors.js';
import { ConsumerGroupMembership, type MembershipHost } from './group-consumer-protocol.js';
import { fetchedRecords } from './records.js';

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
type FetchRequestTopic = Parameters<Consumer['fetch']>[0]['topics'][number];

type ConsumerState = 'idle' | 'starting' | 'running' | 'crashed' | 'stopping' | 'stopped';

/** Kafka's group protocols: `classic` (JoinGroup/SyncGroup, eager here) or `consumer` (KIP-848, broker-side assignment). */
export type GroupProtocol = 'classic' | 'consumer';

/** The longest a KIP-848 revocation's acknowledgement waits for the commits onRevoking started (as the kafkajs rejoin). */
const REVOKING_COMMIT_MAX_MS = 5_000;

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to fetch; undefined until the committed offset (or the reset policy) is known. */
  position: bigint | undefined;
  /** Bumped by every seek and reassignment: a fetch answered for an older version is dropped. */
  version: number;
}

/**
 * Consumer group member on @platformatic/kafka. The client's MessagesStream cannot pause one partition,
 * seek, or hand over a fetch's records per partition with a prefix accepted, and it does not drop records
 * of aborted transactions in read-committed mode; so group membership (join, heartbeats, rejoin) is the
 * client's `joinGroup`, and fetching is our own loop on its public `fetch` (one request per partition
 * leader, with the positions this class keeps):
 *
 * - Assignment: the `consumer:group:join` event carries Kafka's generation and the assignment. Positions
 *   start at the committed offset (else earliest/latest by `fromBeginning`) and are re-read on every join.
 * - Revoking: the client rejoins by itself when a heartbeat is answered REBALANCE_IN_PROGRESS; it has no
 *   event before that, so we listen to its `joinGroup` tracing channel (diagnostics_channel) and call
 *   `onRevoking` there, synchronously, before the JoinGroup request is written.
 * - Read committed: records of aborted transactions are dropped with the fetch response's aborted
 *   transaction list and the abort markers (the Kafka fetch protocol leaves that to the client). The
 *   client's `fetch` filters too, but keeps an aborted range whose abort marker is not in the same
 *   response (a response cut by maxBytes) and remembers one aborted range per producer, so ours runs on
 *   its result: a transactional batch of a producer is dropped from the aborted transaction's first
 *   offset until that producer's abort marker, across responses of the same fetch.
 */
export class PlatformaticConsumer implements TransportConsumer {
  readonly #cluster: Cluster;
  readonly #options: ConsumerOptions;
  readonly #consumer: Consumer;
  readonly #fetchMaxWaitMs: number;
  readonly #maxFailures: number;
  #state: ConsumerState = 'idle';
  #listener: ConsumerListener | undefined;
  #generation = 0;
  /** This member's id and Kafka's generation at the last join, to tell a rejoin as a new member. */
  #memberId: string | undefined;
  #kafkaGeneration: number | undefined;
  /** Classic: the Kafka generation and member id of the last assignment handed to onAssignment. */
  #assignedMetadata: GroupMetadata | undefined;
  /** KIP-848: the member epoch when partitions were released and the runtime not yet told (next onAssignment). */
  #releasedAtEpoch: number | undefined;
  /** onRevoking was called since the last assignment. */
  #revoked = false;
  readonly #assigned = new Map<string, PartitionState>();
  readonly #paused = new Set<string>();
  #commits: Promise<void> = Promise.resolve();
  #commitsInFlight = 0;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #starting: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  readonly #onJoinTrace = (message: unknown): void => this.#onJoinStart(message);
  /** The KIP-848 membership (`groupProtocol: 'consumer'`); undefined for the classic protocol (the client's joinGroup). */
  readonly #membership: ConsumerGroupMembership | undefined;

  constructor(cluster: Cluster, options: ConsumerOptions, fetchMaxWaitMs: number, maxFailures: number, groupProtocol: GroupProtocol) {
    this.#cluster = cluster;
    this.#options = options;
    this.#fetchMaxWaitMs = fetchMaxWaitMs;
    this.#maxFailures = maxFailures;
    if (options.heartbeatIntervalMs >= options.sessionTimeoutMs)
      throw new StreamError(
        'CONFIG_INVALID',
        `consumer of group ${options.groupId}: heartbeatIntervalMs (${options.heartbeatIntervalMs}) must be lower than sessionTimeoutMs (${options.sessionTimeoutMs})`,
      );
    // KIP-848: the client never joins (its joinGroup is not called); ConsumerGroupMembership does, on its connections.
    const group =
      groupProtocol === 'consumer'
        ? {}
        : {
            sessionTimeout: options.sessionTimeoutMs,
            heartbeatInterval: options.heartbeatIntervalMs,
            rebalanceTimeout: options.rebalanceTimeoutMs,
          };
    // The client's default protocol (roundrobin v1) with this member's memberInfo as its userData: the
    // same protocol and split as without it, so members with and without one still agree. (KIP-848 has
    // no userData: the memberInfo is checked but not published.)
    const userData = memberInfoBytes(options.groupId, options.memberInfo);
    const protocols = userData === undefined || groupProtocol === 'consumer' ? {} : { protocols: [{ name: 'roundrobin', version: 1, metadata: userData }] };
    try {
      this.#consumer = new (platformatic().Consumer)({ ...cluster.options, groupId: options.groupId, autocommit: false, ...group, ...protocols });
    } catch (error) {
      throw new StreamError('CONFIG_INVALID', `consumer of group ${options.groupId}: ${toError(error).message}`, { cause: error });
    }
    this.#consumer.on('error', (error: Error) => this.#onClientError(error));
    if (groupProtocol === 'consumer') {
      this.#membership = new ConsumerGroupMembership(
        this.#consumer,
        { groupId: options.groupId, topics: options.topics, rebalanceTimeoutMs: options.rebalanceTimeoutMs, maxFailures },
        this.#membershipHost(),
      );
    } else {
      this.#consumer.on('consumer:group:join', (payload) => this.#onGroupJoin(payload));
    }
  }

  /**
   * The member id and generation to commit the partitions of the last assignment with, in a transaction
   * checked by the broker (KIP-447); undefined before the first assignment. Classic: the Kafka generation and
   * member id of the last assignment handed to onAssignment, not the client's, which moves at the JoinGroup
   * answer, before the runtime hears of its new partitions. KIP-848: the current member epoch (the broker
   * moves it also without a change of partitions), except between a revocation's release and the next
   * onAssignment: then the epoch that owned the released partitions, which the broker refuses once the
   * acknowledgement moved it, so a transaction never commits a partition the runtime still holds but lost.
   */
  groupMetadata(): GroupMetadata | undefined {
    if (this.#membership) {
      const epoch = this.#releasedAtEpoch ?? this.#membership.memberEpoch;
      return epoch > 0 && this.#generation > 0 ? { generationId: epoch, memberId: this.#membership.memberId } : undefined;
    }
    return this.#assignedMetadata;
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
      const missing = await this.#cluster.missingTopics(topics);
      if (missing.length > 0) throw topicMissing(missing, `consumer of group ${groupId}`);
      if (this.#membership) {
        // Resolves once the first assignment was handed to onAssignment.
        await this.#membership.join();
      } else {
        platformatic().consumerGroupChannel.start.subscribe(this.#onJoinTrace);
        this.#consumer.topics.trackAll(...topics);
        // Resolves after JoinGroup and SyncGroup: the join event (onAssignment) was emitted before.
        await this.#consumer.joinGroup({});
      }
      if (this.#state !== 'starting') throw new StreamError('ABORTED', `consumer of group ${groupId} was stopped while starting`);
      this.#state = 'running';
      this.#loop = this.#fetchLoop();
    } catch (error) {
      if (this.#state === 'starting') this.#state = 'crashed';
      platformatic().consumerGroupChannel.start.unsubscribe(this.#onJoinTrace);
      await this.#membership?.leave().catch(() => undefined);
      await this.#consumer.close(true).catch(() => undefined);
      throw error instanceof StreamError ? error : transportError(`consumer of group ${groupId} failed to start`, error, { groupId });
    }
  }

  /** The client is about to (re)join: this member's partitions are about to be revoked. */
  #onJoinStart(message: unknown): void {
    const event = message as { client?: unknown; operation?: unknown };
    if (event.client !== this.#consumer || event.operation !== 'joinGroup') return;
    // Once per generation: the client may start several joins (retries) before the next assignment.
    if (this.#state !== 'running' || this.#revoked) return;
    this.#revoked = true;
    try {
      // The client rejoins by itself, with no hook to hold it: the commits this starts are not waited for.
      void this.#listener?.onRevoking();
    } catch (error) {
      this.#fail(new StreamError('TRANSPORT_FAILED', `onRevoking threw: ${toError(error).message}`, { cause: error }));
    }
  }

  #onGroupJoin(payload: ConsumerGroupJoinPayload): void {
    const assignments: readonly GroupAssignment[] = payload.assignments ?? this.#consumer.assignments ?? [];
    const partitions: TopicPartition[] = assignments.flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition }))).sort(byTopicPartition);
    // Kafka's generation when the protocol reports one; every join is a new generation for the runtime.
    // A rejoin the client started without its traced joinGroup (its retry of a join answered
    // REBALANCE_IN_PROGRESS) was not announced: announce it now, before the new assignment. Commits made
    // here are filtered by the new assignment, which is in place by the time they are sent.
    if (this.#state === 'running' && !this.#revoked && this.#generation > 0) {
      this.#revoked = true;
      try {
        void this.#listener?.onRevoking();
      } catch (error) {
        this.#fail(new StreamError('TRANSPORT_FAILED', `onRevoking threw: ${toError(error).message}`, { cause: error }));
        return;
      }
    }
    // A new member id, or a Kafka generation that skipped one, means this member was out of the group for
    // a while (removed, or restarted): others may have owned its partitions meanwhile (Assignment.rejoined).
    const memberId = this.#consumer.memberId ?? undefined;
    const kafkaGeneration = payload.generationId;
    const rejoined =
      (this.#memberId !== undefined && memberId !== undefined && memberId !== this.#memberId) ||
      (kafkaGeneration !== undefined && this.#kafkaGeneration !== undefined && kafkaGeneration > this.#kafkaGeneration + 1);
    this.#memberId = memberId ?? this.#memberId;
    this.#kafkaGeneration = kafkaGeneration ?? this.#kafkaGeneration;
    const generation = Math.max(this.#generation + 1, payload.generationId ?? 0);
    this.#generation = generation;
    this.#revoked = false;
    const next = new Set(partitions.map((p) => tpKey(p.topic, p.partition)));
    for (const key of this.#paused) if (!next.has(key)) this.#paused.delete(key);
    const versions = new Map([...this.#assigned].map(([key, s]) => [key, s.version]));
    this.#assigned.clear();
    for (const p of partitions) {
      const key = tpKey(p.topic, p.partition);
      this.#assigned.set(key, { topic: p.topic, partition: p.partition, position: undefined, version: (versions.get(key) ?? 0) + 1 });
    }
    const assignedMember = memberId ?? this.#memberId;
    this.#assignedMetadata =
      assignedMember === undefined ? undefined : { generationId: kafkaGeneration ?? this.#consumer.generationId, memberId: assignedMember };
    try {
      this.#listener?.onAssignment({ generation, partitions, ...(rejoined ? { rejoined } : {}) });
    } catch (error) {
      this.#fail(new StreamError('TRANSPORT_FAILED', `onAssignment threw: ${toError(error).message}`, { cause: error }));
    }
    this.#wake?.();
  }

  /** What the KIP-848 membership calls back (see ConsumerGroupMembership for how revocation maps onto the listener). */
  #membershipHost(): MembershipHost {
    return {
      revoking: async () => {
        if (this.#state !== 'running') return;
        let commits: void | Promise<void>;
        try {
          commits = this.#listener?.onRevoking();
        } catch (error) {
          this.#fail(new StreamError('TRANSPORT_FAILED', `onRevoking threw: ${toError(error).message}`, { cause: error }));
          return;
        }
        // The acknowledgement waits for them (bounded): until then the epoch that owns the partitions holds.
        if (commits) await settlesWithin(commits, Math.min(REVOKING_COMMIT_MAX_MS, this.#options.rebalanceTimeoutMs / 2));
      },
      release: (partitions) => {
        // The runtime holds them until the next onAssignment; the acknowledgement moves the member epoch before
        // that, so transactional offsets keep the epoch that owned them (the broker refuses it once moved).
        if (partitions.length > 0) this.#releasedAtEpoch ??= this.#membership?.memberEpoch;
        for (const p of partitions) {
          this.#assigned.delete(tpKey(p.topic, p.partition));
          this.#paused.delete(tpKey(p.topic, p.partition));
        }
      },
      assigned: (assignment) => this.#onIncrementalAssignment(assignment),
      failed: (error) => this.#fail(error),
    };
  }

  /** A KIP-848 assignment: partitions kept keep their position and pause (unless rejoined); new ones start at the committed offset. */
  #onIncrementalAssignment(assignment: Assignment): void {
    const next = new Set(assignment.partitions.map((p) => tpKey(p.topic, p.partition)));
    for (const key of [...this.#assigned.keys()]) if (!next.has(key) || assignment.rejoined) this.#assigned.delete(key);
    for (const key of [...this.#paused]) if (!this.#assigned.has(key)) this.#paused.delete(key);
    for (const p of assignment.partitions) {
      const key = tpKey(p.topic, p.partition);
      if (!this.#assigned.has(key)) this.#assigned.set(key, { topic: p.topic, partition: p.partition, position: undefined, version: this.#generation + 1 });
    }
    this.#generation = assignment.generation;
    this.#releasedAtEpoch = undefined;
    try {
      this.#listener?.onAssignment(assignment);
    } catch (error) {
      this.#fail(new StreamError('TRANSPORT_FAILED', `onAssignment threw: ${toError(error).message}`, { cause: error }));
    }
    this.#wake?.();
  }

  #onClientError(error: Error): void {
    // The client failed to rejoin after its retries: the member is out of the group.
    if (this.#state === 'running') this.#fail(transportError(`consumer of group ${this.#options.groupId} crashed`, error, { groupId: this.#options.groupId }));
  }

  #fail(error: StreamError): void {
    if (this.#state !== 'running') return;
    this.#state = 'crashed';
    this.#wake?.();
    platformatic().consumerGroupChannel.start.unsubscribe(this.#onJoinTrace);
    const membership = this.#membership;
    void (membership ? membership.leave().catch(() => undefined) : Promise.resolve()).then(() => this.#consumer.close(true)).catch(() => undefined);
    this.#listener?.onCrash(error);
  }

  /** Positions of partitions that have none yet: the committed offset, else the reset policy. */
  async #resolvePositions(): Promise<void> {
    const pending = [...this.#assigned.values()].filter((s) => s.position === undefined);
    if (pending.length === 0) return;
    const versions = new Map(pending.map((s) => [tpKey(s.topic, s.partition), s.version]));
    const byTopic = new Map<string, number[]>();
    for (const s of pending) byTopic.set(s.topic, [...(byTopic.get(s.topic) ?? []), s.partition]);
    const committed = await this.#consumer.listCommittedOffsets({ topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) });
    const reset: Record<string, number[]> = {};
    const apply = (topic: string, partition: number, offset: bigint): void => {
      const state = this.#assigned.get(tpKey(topic, partition));
      if (state && state.position === undefined && state.version === versions.get(tpKey(topic, partition))) state.position = offset;
    };
    for (const [topic, partitions] of byTopic) {
      const offsets = committed.get(topic) ?? [];
      for (const partition of partitions) {
        const offset = offsets[partition];
        if (offset !== undefined && offset >= 0n) apply(topic, partition, offset);
        else (reset[topic] ??= []).push(partition);
      }
    }
    const topics = Object.keys(reset);
    if (topics.length === 0) return;
    const listed = await this.#consumer.listOffsets({
      topics,
      partitions: reset,
      timestamp: this.#options.fromBeginning ? platformatic().ListOffsetTimestamps.EARLIEST : platformatic().ListOffsetTimestamps.LATEST,
      isolationLevel: this.#isolation,
    });
    for (const topic of topics) for (const partition of reset[topic] ?? []) apply(topic, partition, listed.get(topic)?.[partition] ?? 0n);
  }

  get #isolation(): number {
    return this.#options.readCommitted ? platformatic().FetchIsolationLevels.READ_COMMITTED : platformatic().FetchIsolationLevels.READ_UNCOMMITTED;
  }

  #fetchable(): PartitionState[] {
    return [...this.#assigned.values()].filter((s) => s.position !== undefined && !this.#paused.has(tpKey(s.topic, s.partition)));
  }

  /** Waits until woken (assignment, resume, seek) or `ms` passed. */
  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  async #fetchLoop(): Promise<void> {
    let failures = 0;
    let lastError: unknown;
    while (this.#state === 'running') {
      try {
        await this.#resolvePositions();
        const ready = this.#fetchable();
        if (ready.length === 0) {
          await this.#sleep(this.#fetchMaxWaitMs);
          continue;
        }
        await this.#fetchOnce(ready);
        failures = 0;
      } catch (error) {
        if (this.#state !== 'running') break;
        lastError = error;
        failures += 1;
        if (failures > this.#maxFailures) {
          this.#fail(
            transportError(`consumer of group ${this.#options.groupId}: fetching failed ${failures} times in a row`, lastError, {
              groupId: this.#options.groupId,
            }),
          );
          break;
        }
        await this.#sleep(Math.min(100 * 2 ** failures, 2000));
      }
    }
  }

  async #fetchOnce(ready: readonly PartitionState[]): Promise<void> {
    const topics = [...new Set(ready.map((s) => s.topic))];
    const metadata: ClusterMetadata = await this.#consumer.metadata({ topics });
    const byNode = new Map<number, { requests: Map<string, FetchRequestTopic>; states: PartitionState[] }>();
    const topicNames = new Map<string, string>();
    for (const s of ready) {
      const topic = metadata.topics.get(s.topic);
      const leader = topic?.partitions[s.partition]?.leader;
      if (!topic || leader === undefined || leader < 0) continue;
      topicNames.set(topic.id, s.topic);
      let node = byNode.get(leader);
      if (!node) byNode.set(leader, (node = { requests: new Map(), states: [] }));
      let request = node.requests.get(topic.id);
      if (!request) node.requests.set(topic.id, (request = { topicId: topic.id, partitions: [] }));
      request.partitions.push({
        partition: s.partition,
        fetchOffset: s.position ?? 0n,
        partitionMaxBytes: this.#options.maxBytesPerPartition,
        currentLeaderEpoch: -1,
        lastFetchedEpoch: -1,
      });
      node.states.push(s);
    }
    if (byNode.size === 0) {
      await this.#consumer.metadata({ topics, forceUpdate: true });
      await this.#sleep(this.#fetchMaxWaitMs);
      return;
    }
    await Promise.all(
      [...byNode].map(async ([node, { requests, states }]) => {
        const requested = new Map(states.map((s) => [tpKey(s.topic, s.partition), { state: s, version: s.version, offset: s.position ?? 0n }]));
        let response: FetchResponse;
        try {
          response = await this.#consumer.fetch({
            node,
            topics: [...requests.values()],
            maxWaitTime: this.#fetchMaxWaitMs,
            minBytes: 1,
            maxBytes: this.#options.maxBytesPerPartition * Math.max(1, states.length),
            isolationLevel: this.#isolation,
          });
        } catch (error) {
          if (hasProtocolError(error, 'OFFSET_OUT_OF_RANGE')) {
            // Reset to the policy: the positions are re-resolved (committed offset, else earliest/latest).
            for (const { state } of requested.values()) state.position = undefined;
          }
          await this.#consumer.metadata({ topics, forceUpdate: true }).catch(() => undefined);
          throw error;
        }
        this.#deliver(response, topicNames, requested);
      }),
    );
  }

  #deliver(response: FetchResponse, topicNames: Map<string, string>, requested: Map<string, { state: PartitionState; version: number; offset: bigint }>): void {
    for (const topicResponse of response.responses) {
      const topic = topicNames.get(topicResponse.topicId);
      if (topic === undefined) continue;
      for (const p of topicResponse.partitions) {
        if (this.#state !== 'running') return;
        const key = tpKey(topic, p.partitionIndex);
        const asked = requested.get(key);
        // Not asked for (fetch sessions), reassigned, sought or paused since: drop, it is fetched again.
        if (!asked || p.errorCode !== 0) continue;
        const state = this.#assigned.get(key);
        if (state !== asked.state || state.version !== asked.version || state.position !== asked.offset || this.#paused.has(key)) continue;
        const { messages, next } = fetchedRecords(p.records ?? [], p.abortedTransactions ?? [], asked.offset, this.#options.readCommitted);
        if (next === undefined) continue;
        if (messages.length === 0) {
          state.position = next;
          continue;
        }
        let accepted: number;
        try {
          accepted = this.#listener?.onBatch({ topic, partition: p.partitionIndex, highWatermark: p.highWatermark.toString(), messages }) ?? 0;
        } catch (error) {
          this.#fail(
            new StreamError('TRANSPORT_FAILED', `onBatch threw for ${topic}/${p.partitionIndex}: ${toError(error).message}`, {
              cause: error,
              context: { topic, partition: p.partitionIndex },
            }),
          );
          return;
        }
        accepted = Number.isFinite(accepted) ? Math.min(messages.length, Math.max(0, Math.floor(accepted))) : 0;
        // The listener may have paused or sought this partition meanwhile: a seek wins.
        if (state.version !== asked.version || this.#assigned.get(key) !== state) continue;
        if (accepted === messages.length) state.position = next;
        else if (accepted > 0) state.position = BigInt(messages[accepted - 1]?.offset ?? '0') + 1n;
      }
    }
  }

  pause(partitions: readonly TopicPartition[]): void {
    for (const p of partitions) if (this.#assigned.has(tpKey(p.topic, p.partition))) this.#paused.add(tpKey(p.topic, p.partition));
  }

  resume(partitions: readonly TopicPartition[]): void {
    let resumed = false;
    for (const p of partitions) resumed = this.#paused.delete(tpKey(p.topic, p.partition)) || resumed;
    if (resumed) this.#wake?.();
  }

  /** Moves the position at once; a fetch in flight for the partition is dropped (its version is older). */
  seek(position: PartitionOffset): void {
    const state = this.#assigned.get(tpKey(position.topic, position.partition));
    if (!state) return;
    state.position = BigInt(position.offset);
    state.version += 1;
    this.#wake?.();
  }

  /** Commits offsets of partitions this member owns (others are left out: they could move the new owner back). Serialised. */
  commit(offsets: readonly PartitionOffset[]): Promise<void> {
    // With no commit in flight the request starts synchronously: a commit made in onRevoking then reaches
    // the coordinator before the JoinGroup the client is about to send, while the old generation still
    // counts. (A commit refused for a rejoin reason makes the client rejoin and retry it in the new
    // generation by itself, which costs one more rebalance.)
    const run = this.#commitsInFlight === 0 ? this.#commitNow(offsets) : this.#commits.then(() => this.#commitNow(offsets));
    this.#commitsInFlight += 1;
    const settled = run
      .catch(() => undefined)
      .finally(() => {
        this.#commitsInFlight -= 1;
      });
    this.#commits = settled;
    return run;
  }

  async #commitNow(offsets: readonly PartitionOffset[]): Promise<void> {
    const groupId = this.#options.groupId;
    if (this.#state !== 'running')
      throw new StreamError('TRANSPORT_FAILED', `cannot commit: consumer of group ${groupId} is ${this.#state}`, { context: { groupId } });
    const owns = (p: TopicPartition): boolean => this.#assigned.has(tpKey(p.topic, p.partition));
    const owned = offsets.filter(owns);
    if (owned.length === 0) return;
    try {
      // KIP-848: OffsetCommit v9 with this member's id and epoch (the client's commit sends its own, which it has not).
      if (this.#membership) return await this.#membership.commit(owned, owns);
      await this.#consumer.commit({ offsets: owned.map((o) => ({ topic: o.topic, partition: o.partition, offset: BigInt(o.offset), leaderEpoch: -1 })) });
    } catch (error) {
      throw transportError(`commit for group ${groupId} failed`, error, { groupId });
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
    const wasRunning = this.#state === 'running' || this.#state === 'starting';
    this.#state = 'stopping';
    this.#wake?.();
    await this.#starting?.catch(() => undefined);
    await this.#loop?.catch(() => undefined);
    platformatic().consumerGroupChannel.start.unsubscribe(this.#onJoinTrace);
    try {
      // Leaves the group (the others rebalance now, not after the session timeout) and closes the connections.
      if (wasRunning) await this.#membership?.leave();
      if (wasRunning) await this.#consumer.close(true);
    } catch (error) {
      throw transportError(`consumer of group ${this.#options.groupId} failed to stop`, error, { groupId: this.#options.groupId });
    } finally {
      this.#state = 'stopped';
    }
  }
}
