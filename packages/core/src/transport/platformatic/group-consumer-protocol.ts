/**
 * Membership of a KIP-848 consumer group (`groupProtocol: 'consumer'`, Kafka 4.x) on the public API of
 * @platformatic/kafka: its exported protocol APIs (FindCoordinator, ConsumerGroupHeartbeat, OffsetCommit v9)
 * sent on the connections of the transport's own Consumer. The client joins such a group only inside
 * `consume()` (its MessagesStream), which this transport does not use (see PlatformaticConsumer).
 *
 * How the broker-driven reconciliation maps onto the runtime's {@link ConsumerListener} (eager-shaped:
 * onRevoking, then the next assignment lists everything the member owns):
 *
 * - Every heartbeat is a full one (subscription, rebalance timeout and owned partitions), so each answer
 *   carries the member's current assignment as topic ids and partitions (mapped to names with Metadata).
 * - Partitions only added: onAssignment with the owned set plus the new ones; no onRevoking (the runtime
 *   keeps the state of partitions listed again).
 * - Partitions removed: onRevoking, and the acknowledgement (a heartbeat without them) waits until the
 *   promise it returned settles (bounded), so its commits go out under the member epoch that still owns
 *   them; the transport stops fetching and committing them at the acknowledgement; onAssignment follows
 *   with the next answer (the new epoch), listing what the member keeps plus what it gained.
 * - Fenced (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID): everything is dropped at once (no commit for it can
 *   count any more), the member rejoins with epoch 0 and the same member id, and its next assignment is
 *   `rejoined: true`.
 * - Stop: a heartbeat with epoch -1 (leave), best effort.
 *
 * `Assignment.generation` is the member epoch; when the broker hands over partitions released by another
 * member within one epoch (the epoch does not move), it is one more than the previous generation, so
 * every assignment the runtime hears is a new generation.
 */
import { randomUUID } from 'node:crypto';
import type { Broker, Connection, Consumer, consumerGroupHeartbeatV1, findCoordinatorV6, offsetCommitV9 } from '@platformatic/kafka';
import { platformatic } from './client.js';
import { settlesWithin } from '../../abort.js';
import { StreamError } from '../../errors.js';
import { byTopicPartition, tpKey } from '../shared.js';
import type { Assignment, PartitionOffset, TopicPartition } from '../transport.js';
import { hasProtocolError, protocolIds, transportError } from './errors.js';

type HeartbeatResponse = consumerGroupHeartbeatV1.ConsumerGroupHeartbeatResponse;
type HeartbeatApi = typeof consumerGroupHeartbeatV1.api;

/** API keys (Kafka protocol) this membership needs the broker to support. */
const API_KEYS = { offsetCommit: 8, findCoordinator: 10, consumerGroupHeartbeat: 68 } as const;

/** Errors after which the member is no longer in the group: it drops everything and rejoins with epoch 0. */
const FENCING_ERRORS = ['FENCED_MEMBER_EPOCH', 'UNKNOWN_MEMBER_ID'];

/** Errors no retry can fix: the membership fails (the consumer crashes with the cause). */
const FATAL_ERRORS = [
  'UNSUPPORTED_ASSIGNOR',
  'UNSUPPORTED_VERSION',
  'INVALID_REQUEST',
  'GROUP_MAX_SIZE_REACHED',
  'GROUP_AUTHORIZATION_FAILED',
  'TOPIC_AUTHORIZATION_FAILED',
  'UNRELEASED_INSTANCE_ID',
  'GROUP_ID_NOT_FOUND',
  'INCONSISTENT_GROUP_PROTOCOL',
];

/** Errors that mean the coordinator moved or is not ready: find it again. */
const COORDINATOR_ERRORS = ['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS'];

/** What the membership tells the consumer it works for. */
export interface MembershipHost {
  /** Partitions are about to be revoked (the listener's onRevoking); resolves when its commits settled, or at once. */
  revoking(): Promise<void>;
  /** These partitions are no longer this member's: stop fetching and committing them now. */
  release(partitions: readonly TopicPartition[]): void;
  /** The member owns exactly these partitions now (the listener's onAssignment). */
  assigned(assignment: Assignment): void;
  /** The membership failed for good: the consumer crashes. */
  failed(error: StreamError): void;
}

export interface MembershipOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  /** How long the broker waits for this member to revoke partitions before it removes it. */
  readonly rebalanceTimeoutMs: number;
  /** Consecutive failed heartbeats (broker gone) before the membership fails. */
  readonly maxFailures: number;
  /** The broker-side assignor (`uniform`, `range`); default the broker's (group.consumer.assignors, first: uniform). */
  readonly serverAssignor?: string;
}

interface OwnedPartition extends TopicPartition {
  readonly topicId: string;
}

type State = 'idle' | 'running' | 'stopping' | 'stopped';

/** One member of a KIP-848 consumer group: heartbeats, reconciliation, commits with the member epoch, leave. */
export class ConsumerGroupMembership {
  readonly #client: Consumer;
  readonly #options: MembershipOptions;
  readonly #host: MembershipHost;
  #state: State = 'idle';
  #heartbeat: HeartbeatApi | undefined;
  #findCoordinator: typeof findCoordinatorV6.api | undefined;
  #coordinator: Broker | undefined;
  #memberId = '';
  #epoch = 0;
  #intervalMs = 5_000;
  /** What this member owns (and reports as owned in each heartbeat), by tpKey. */
  #owned = new Map<string, OwnedPartition>();
  /** The generation of the last assignment the host heard (0: none yet). */
  #generation = 0;
  /** Partitions were revoked (or the member was fenced) since the last assignment the host heard: the next answer is announced. */
  #announce = true;
  /** The member was fenced since the last assignment: the next one is `rejoined`. */
  #rejoined = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #joined: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  /** Resolved by each successful heartbeat: a commit refused with STALE_MEMBER_EPOCH waits for the next one. */
  #heartbeats: { promise: Promise<void>; resolve: () => void } = deferred();

  constructor(client: Consumer, options: MembershipOptions, host: MembershipHost) {
    this.#client = client;
    this.#options = options;
    this.#host = host;
  }

  /** The member id (client-generated with ConsumerGroupHeartbeat v1, broker-given with v0); empty before the first heartbeat. */
  get memberId(): string {
    return this.#memberId;
  }

  /** The member epoch: 0 while (re)joining, -1 once left. */
  get memberEpoch(): number {
    return this.#epoch;
  }

  /** Joins: resolves once the first assignment was handed to the host (possibly empty: the partitions are still owned by others). */
  async join(): Promise<void> {
    if (this.#state !== 'idle') throw new StreamError('STATE_INVALID', `consumer of group ${this.#options.groupId}: KIP-848 membership already started`);
    await this.#negotiate();
    this.#state = 'running';
    const joined = new Promise<void>((resolve, reject) => {
      this.#joined = { resolve, reject };
    });
    this.#loop = this.#run();
    await joined;
  }

  /** Picks the API versions the broker supports; a broker without KIP-848 (before Kafka 4.0) is CONFIG_INVALID. */
  async #negotiate(): Promise<void> {
    const { groupId } = this.#options;
    let apis: Awaited<ReturnType<Consumer['listApis']>>;
    try {
      apis = await this.#client.listApis();
    } catch (error) {
      throw transportError(`consumer of group ${groupId}: listing the broker's APIs failed`, error, { groupId });
    }
    const max = (key: number): number => apis.find((a) => a.apiKey === key)?.maxVersion ?? -1;
    const heartbeat = max(API_KEYS.consumerGroupHeartbeat);
    const commit = max(API_KEYS.offsetCommit);
    const coordinator = max(API_KEYS.findCoordinator);
    if (heartbeat < 0 || commit < 9 || coordinator < 4) {
      throw new StreamError(
        'CONFIG_INVALID',
        `consumer of group ${groupId}: groupProtocol 'consumer' (KIP-848) needs a broker with ConsumerGroupHeartbeat, OffsetCommit v9 and FindCoordinator v4 (Kafka 4.0 or later); this one has ConsumerGroupHeartbeat up to v${heartbeat}, OffsetCommit up to v${commit}, FindCoordinator up to v${coordinator}`,
        { context: { groupId } },
      );
    }
    this.#heartbeat = heartbeat >= 1 ? platformatic().consumerGroupHeartbeatV1.api : platformatic().consumerGroupHeartbeatV0.api;
    this.#findCoordinator = coordinator >= 6 ? platformatic().findCoordinatorV6.api : platformatic().findCoordinatorV4.api;
    // KIP-1082: from v1 on the member id is the client's (a UUID), kept for the consumer's lifetime, also across fencing.
    if (heartbeat >= 1) this.#memberId = randomUUID();
  }

  async #connection(): Promise<Connection> {
    const { groupId, topics } = this.#options;
    if (this.#coordinator === undefined) {
      const metadata = await this.#client.metadata({ topics: [...topics] });
      const any = await this.#client.connections.getFirstAvailable([...metadata.brokers.values()]);
      const api = this.#findCoordinator ?? platformatic().findCoordinatorV6.api;
      const response = await api.async(any, 0, [groupId]);
      const found = response.coordinators.find((c) => c.key === groupId) ?? response.coordinators[0];
      if (!found) throw new StreamError('TRANSPORT_FAILED', `consumer of group ${groupId}: FindCoordinator answered no coordinator`, { context: { groupId } });
      this.#coordinator = { host: found.host, port: found.port };
    }
    return this.#client.connections.get(this.#coordinator);
  }

  #send(epoch: number): Promise<HeartbeatResponse> {
    const api = this.#heartbeat;
    if (!api) throw new StreamError('STATE_INVALID', `consumer of group ${this.#options.groupId}: KIP-848 membership not started`);
    const owned = epoch === 0 ? [] : this.#ownedByTopicId();
    return this.#connection().then((connection) =>
      api.async(
        connection,
        this.#options.groupId,
        this.#memberId,
        epoch,
        null,
        null,
        this.#options.rebalanceTimeoutMs,
        [...this.#options.topics],
        null,
        this.#options.serverAssignor ?? null,
        owned,
      ),
    );
  }

  #ownedByTopicId(): { topicId: string; partitions: number[] }[] {
    const byId = new Map<string, number[]>();
    for (const p of this.#owned.values()) byId.set(p.topicId, [...(byId.get(p.topicId) ?? []), p.partition]);
    return [...byId].map(([topicId, partitions]) => ({ topicId, partitions: partitions.sort((a, b) => a - b) }));
  }

  async #run(): Promise<void> {
    const { groupId } = this.#options;
    let failures = 0;
    while (this.#state === 'running') {
      let response: HeartbeatResponse;
      try {
        response = await this.#send(this.#epoch);
        failures = 0;
      } catch (error) {
        if (this.#state !== 'running') break;
        const ids = protocolIds(error);
        if (ids.some((id) => FENCING_ERRORS.includes(id))) {
          this.#fenced();
          await this.#sleep(100);
          continue;
        }
        if (ids.some((id) => FATAL_ERRORS.includes(id))) {
          this.#fail(transportError(`consumer of group ${groupId}: the KIP-848 heartbeat was refused`, error, { groupId, memberId: this.#memberId }));
          break;
        }
        // The coordinator moved, is loading, or the connection broke: find it again.
        if (ids.length === 0 || ids.some((id) => COORDINATOR_ERRORS.includes(id))) this.#coordinator = undefined;
        failures += 1;
        if (failures > this.#options.maxFailures) {
          this.#fail(
            transportError(`consumer of group ${groupId}: heartbeats failed ${failures} times in a row`, error, { groupId, memberId: this.#memberId }),
          );
          break;
        }
        await this.#sleep(Math.min(100 * 2 ** failures, this.#intervalMs));
        continue;
      }
      let acknowledge: boolean;
      try {
        acknowledge = await this.#reconcile(response);
      } catch (error) {
        if (this.#state !== 'running') break;
        // Topic ids could not be mapped to names (Metadata failed): the same answer comes with the next heartbeat.
        failures += 1;
        if (failures > this.#options.maxFailures) {
          this.#fail(transportError(`consumer of group ${groupId}: reconciling the assignment failed ${failures} times in a row`, error, { groupId }));
          break;
        }
        await this.#sleep(Math.min(100 * 2 ** failures, this.#intervalMs));
        continue;
      }
      if (!acknowledge) await this.#sleep(this.#intervalMs);
    }
  }

  /** Applies an answer; true when the broker must hear at once what this member now owns (a revocation done). */
  async #reconcile(response: HeartbeatResponse): Promise<boolean> {
    if (response.memberId) this.#memberId = response.memberId;
    this.#epoch = response.memberEpoch;
    if (response.heartbeatIntervalMs > 0) this.#intervalMs = response.heartbeatIntervalMs;
    const heard = this.#heartbeats;
    this.#heartbeats = deferred();
    heard.resolve();
    // Full heartbeats are always answered with the assignment; null would mean "unchanged".
    if (!response.assignment) return false;
    const target = await this.#named(response.assignment.topicPartitions);
    if (this.#state !== 'running') return false;
    const removed = [...this.#owned.keys()].filter((key) => !target.has(key));
    const added = [...target.keys()].filter((key) => !this.#owned.has(key));
    if (removed.length > 0) {
      // The epoch that owns them holds until the acknowledgement: the commits of onRevoking count.
      await this.#host.revoking();
      if (this.#state !== 'running') return false;
      const released = removed.flatMap((key) => {
        const p = this.#owned.get(key);
        return p ? [{ topic: p.topic, partition: p.partition }] : [];
      });
      for (const key of removed) this.#owned.delete(key);
      this.#host.release(released);
      this.#announce = true;
      return true;
    }
    if (added.length === 0 && !this.#announce) return false;
    this.#owned = target;
    this.#generation = Math.max(this.#generation + 1, response.memberEpoch);
    const partitions = [...target.values()].map((p) => ({ topic: p.topic, partition: p.partition })).sort(byTopicPartition);
    const assignment: Assignment = { generation: this.#generation, partitions, ...(this.#rejoined ? { rejoined: true } : {}) };
    this.#announce = false;
    this.#rejoined = false;
    this.#host.assigned(assignment);
    const joined = this.#joined;
    this.#joined = undefined;
    joined?.resolve();
    return false;
  }

  /** The broker's assignment (topic ids) by partition key, with topic names from Metadata (refreshed once for an unknown id). */
  async #named(assignment: readonly { topicId: string; partitions: number[] }[]): Promise<Map<string, OwnedPartition>> {
    const names = async (forceUpdate: boolean): Promise<Map<string, string>> => {
      const metadata = await this.#client.metadata({ topics: [...this.#options.topics], forceUpdate });
      return new Map([...metadata.topics].map(([name, topic]) => [topic.id, name]));
    };
    let byId = await names(false);
    if (assignment.some((t) => !byId.has(t.topicId))) byId = await names(true);
    const target = new Map<string, OwnedPartition>();
    for (const { topicId, partitions } of assignment) {
      const topic = byId.get(topicId);
      // A topic id not among the subscribed topics' (deleted meanwhile): not taken, so never reported as owned.
      if (topic === undefined) continue;
      for (const partition of partitions) target.set(tpKey(topic, partition), { topicId, topic, partition });
    }
    return target;
  }

  /** Out of the group: nothing owned counts any more; rejoin with epoch 0 and the same member id. */
  #fenced(): void {
    const lost = [...this.#owned.values()].map((p) => ({ topic: p.topic, partition: p.partition }));
    this.#owned = new Map();
    this.#epoch = 0;
    if (this.#generation > 0) this.#rejoined = true;
    this.#announce = true;
    if (lost.length > 0) this.#host.release(lost);
  }

  #fail(error: StreamError): void {
    if (this.#state !== 'running') return;
    this.#state = 'stopped';
    const joined = this.#joined;
    this.#joined = undefined;
    if (joined) joined.reject(error);
    else this.#host.failed(error);
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#state !== 'running') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  /**
   * Commits offsets with this member's id and epoch (OffsetCommit v9, which the broker checks against the
   * member's current epoch). Refused with STALE_MEMBER_EPOCH (an answer raising the epoch is on its way), it
   * is sent again after the next heartbeat, for the partitions `owns` still accepts.
   */
  async commit(offsets: readonly PartitionOffset[], owns: (p: TopicPartition) => boolean): Promise<void> {
    const { groupId } = this.#options;
    for (let attempt = 0; ; attempt++) {
      const owned = offsets.filter(owns);
      if (owned.length === 0) return;
      const topics = new Map<string, offsetCommitV9.OffsetCommitRequestTopic>();
      for (const o of owned) {
        let topic = topics.get(o.topic);
        if (!topic) topics.set(o.topic, (topic = { name: o.topic, partitions: [] }));
        topic.partitions.push({ partitionIndex: o.partition, committedOffset: BigInt(o.offset), committedLeaderEpoch: -1, committedMetadata: null });
      }
      const epoch = this.#epoch;
      const heartbeat = this.#heartbeats.promise;
      try {
        const connection = await this.#connection();
        await platformatic().offsetCommitV9.api.async(connection, groupId, epoch, this.#memberId, null, [...topics.values()]);
        return;
      } catch (error) {
        if (attempt >= 3 || this.#state !== 'running') throw error;
        if (hasProtocolError(error, 'STALE_MEMBER_EPOCH')) {
          // The answer that raised the epoch is on its way (or was just applied): retry with the new one.
          if (this.#epoch === epoch) await settlesWithin(heartbeat, this.#intervalMs + 1_000);
          continue;
        }
        const ids = protocolIds(error);
        if (ids.length === 0 || ids.some((id) => COORDINATOR_ERRORS.includes(id))) {
          this.#coordinator = undefined;
          await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
          continue;
        }
        throw error;
      }
    }
  }

  /** Stops heartbeating (a heartbeat or a revocation in progress finishes first) without leaving. */
  async stop(): Promise<void> {
    if (this.#state === 'running') this.#state = 'stopping';
    const joined = this.#joined;
    this.#joined = undefined;
    joined?.reject(new StreamError('ABORTED', `consumer of group ${this.#options.groupId} was stopped while joining`));
    this.#wake?.();
    await this.#loop?.catch(() => undefined);
    this.#state = 'stopped';
  }

  /** Stops and leaves the group (a heartbeat with epoch -1): the others get its partitions now, not after the session timeout. */
  async leave(): Promise<void> {
    const wasMember = this.#state === 'running' && this.#heartbeat !== undefined;
    await this.stop();
    const api = this.#heartbeat;
    if (!wasMember || !api || this.#memberId === '') return;
    const epoch = this.#epoch;
    this.#epoch = -1;
    if (epoch <= 0 && this.#owned.size === 0 && this.#generation === 0) return;
    this.#owned = new Map();
    try {
      const connection = await this.#connection();
      await api.async(connection, this.#options.groupId, this.#memberId, -1, null, null, 0, [], null, this.#options.serverAssignor ?? null, []);
    } catch {
      // Best effort (also UNKNOWN_MEMBER_ID once fenced): the broker removes the member after its session timeout anyway.
    }
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
