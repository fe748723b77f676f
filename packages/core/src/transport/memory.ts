/**
 * An in-memory broker and transport that behave like kafkajs against a real Kafka cluster (auto-create
 * off, eager rebalances, read-committed transactions), so the runtime runs unchanged in unit tests.
 */
import { StreamError, toError } from '../errors.js';
import type {
  Assignment,
  ConsumerListener,
  ConsumerOptions,
  FetchedBatch,
  OutgoingMessage,
  PartitionOffset,
  ProducerOptions,
  RawHeaders,
  RawMessage,
  TopicPartition,
  TopicSpec,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
  TransportTransaction,
} from './transport.js';

/** A message as the memory broker stores it: what a consumer fetches, plus where it lives. */
export interface StoredMessage extends RawMessage {
  readonly topic: string;
  readonly partition: number;
}

/** One accepted offset commit, as {@link MemoryBroker.commitHistory} lists it. */
export interface CommitRecord {
  readonly groupId: string;
  /** The group's generation when the commit was accepted. */
  readonly generation: number;
  readonly offsets: readonly PartitionOffset[];
  /** The consumer member that committed, or null for offsets committed by a transaction. */
  readonly memberId: string | null;
  /** The producer's transactional id for offsets committed by a transaction, else null. */
  readonly transactionalId: string | null;
}

/** Offsets a transaction commits for one consumer group. */
export interface GroupOffsets {
  readonly groupId: string;
  readonly offsets: readonly PartitionOffset[];
}

/**
 * What the broker is about to do when a fault hook runs; a hook that throws makes the operation fail
 * with that error before anything changed. Messages are shown with the partition they were routed to.
 */
export type FaultEvent =
  | { readonly point: 'send'; readonly messages: readonly OutgoingMessage[] }
  | { readonly point: 'commit'; readonly groupId: string; readonly memberId: string; readonly offsets: readonly PartitionOffset[] }
  | {
      readonly point: 'transaction';
      readonly transactionalId: string;
      readonly messages: readonly OutgoingMessage[];
      readonly offsets: readonly GroupOffsets[];
    }
  | { readonly point: 'fetch'; readonly groupId: string; readonly memberId: string; readonly topic: string; readonly partition: number };

/** Where a fault can be injected: a plain send, a consumer commit, a transaction commit, or a fetch (which crashes the consumer). */
export type FaultPoint = FaultEvent['point'];

/** A fault hook for one point; throw to fail the operation. */
export type FaultHook<P extends FaultPoint> = (event: Extract<FaultEvent, { readonly point: P }>) => void;

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions {
  /** Most messages per fetched batch (default 500). */
  readonly maxBatchSize?: number;
}

/** A message with the partition it was routed to, its bytes copied so the caller may reuse its buffers. */
interface RoutedMessage extends OutgoingMessage {
  readonly partition: number;
}

/** A consumer as its group sees it. Neither callback may call into the listener synchronously. */
interface GroupMember {
  readonly id: string;
  readonly topics: readonly string[];
  /** The group began rebalancing: the member hears onRevoking, then calls `ack` once its last commits went out. */
  revoke(ack: () => void): void;
  /** The member's share of a new generation. */
  assign(assignment: Assignment): void;
}

interface Group {
  generation: number;
  /** In join order, which the round-robin assignment follows. */
  readonly members: GroupMember[];
  /** Ids of the members of the current generation. */
  assigned: Set<string>;
  /** Partition key to the id of the member owning it in the current generation. */
  readonly owners: Map<string, string>;
  /** While a rebalance is in progress: members of the current generation that have not acknowledged it yet. */
  awaiting: Set<string> | undefined;
  /** Members that acknowledged the rebalance in progress: like a member that rejoined, their commits fail until it completes. */
  readonly rejoined: Set<string>;
  /** Tells acknowledgements of one rebalance from those of another. */
  round: number;
  readonly committed: Map<string, PartitionOffset>;
  readonly history: CommitRecord[];
}

interface TopicLog {
  readonly partitions: StoredMessage[][];
  /** Next partition for a message without key or partition. */
  roundRobin: number;
}

const DEFAULT_MAX_BATCH_SIZE = 500;
/** How long a partition whose batch was only partly accepted, and which was not paused, waits before it is fetched again. */
const REDELIVERY_DELAY_MS = 10;
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const tpName = (tp: TopicPartition): string => `${tp.topic}/${tp.partition}`;
const byTopicPartition = (a: TopicPartition, b: TopicPartition): number =>
  a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;

/**
 * Kafka's murmur2 (32-bit, seed 0x9747b28c), as the Java client and kafkajs' default partitioner use it,
 * so a key lands on the same partition here as on a real cluster.
 */
function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ data.length) | 0;
  const words = data.length >>> 2;
  for (let i = 0; i < words; i++) {
    let k = data.readInt32LE(i * 4);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = data.length & ~3;
  const rest = data.length & 3;
  if (rest >= 3) h ^= (data[tail + 2] ?? 0) << 16;
  if (rest >= 2) h ^= (data[tail + 1] ?? 0) << 8;
  if (rest >= 1) {
    h ^= data[tail] ?? 0;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

/** Parses an offset the way the broker accepts it: a decimal string of a non-negative safe integer. */
function parseOffset(offset: string, where: string): number {
  const value = /^\d+$/.test(offset) ? Number(offset) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    throw new StreamError('STATE_INVALID', `${where}: offset ${JSON.stringify(offset)} is not a non-negative integer string`);
  }
  return value;
}

function copyHeaders(headers: RawHeaders): RawHeaders {
  const out: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = Buffer.from(value);
  return out;
}

function messageBytes(message: RawMessage): number {
  let size = (message.key?.length ?? 0) + (message.value?.length ?? 0);
  for (const [name, value] of Object.entries(message.headers)) size += name.length + value.length;
  return size;
}

/** Everything the broker knows and does; kept off {@link MemoryBroker}'s public surface. */
class BrokerCore {
  readonly #topics = new Map<string, TopicLog>();
  readonly #groups = new Map<string, Group>();
  readonly #epochs = new Map<string, number>();
  readonly #appendListeners = new Set<(topic: string) => void>();
  readonly #hooks = new Map<FaultPoint, Set<(event: FaultEvent) => void>>();
  #nextMemberId = 0;

  createTopic(name: string, partitions: number): boolean {
    if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
      throw new StreamError('CONFIG_INVALID', `invalid topic name ${JSON.stringify(name)}: use 1-249 of [A-Za-z0-9._-]`);
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new StreamError('CONFIG_INVALID', `topic ${name}: partitions must be a positive integer, got ${partitions}`, { context: { topic: name } });
    }
    if (this.#topics.has(name)) return false;
    this.#topics.set(name, { partitions: Array.from({ length: partitions }, () => []), roundRobin: 0 });
    return true;
  }

  topicNames(): string[] {
    return [...this.#topics.keys()].sort();
  }

  topic(name: string): TopicLog {
    const topic = this.#topics.get(name);
    if (!topic) {
      throw new StreamError('TOPIC_MISSING', `topic ${name} does not exist (auto-create is off): create it first`, { context: { topic: name } });
    }
    return topic;
  }

  log(topic: string, partition: number): StoredMessage[] {
    const partitions = this.topic(topic).partitions;
    const log = partitions[partition];
    if (!log) {
      throw new StreamError('TOPIC_MISSING', `partition ${partition} of topic ${topic} does not exist (it has ${partitions.length})`, {
        context: { topic, partition },
      });
    }
    return log;
  }

  endOffsets(topic: string): PartitionOffset[] {
    return this.topic(topic).partitions.map((log, partition) => ({ topic, partition, offset: String(log.length) }));
  }

  /** Validates messages and picks their partitions, without appending anything. */
  route(messages: readonly OutgoingMessage[]): RoutedMessage[] {
    return messages.map((message) => {
      const topic = this.topic(message.topic);
      let partition: number;
      if (message.partition !== undefined) {
        partition = message.partition;
        this.log(message.topic, partition);
      } else if (message.key !== null) {
        partition = (murmur2(message.key) & 0x7fffffff) % topic.partitions.length;
      } else {
        partition = topic.roundRobin;
        topic.roundRobin = (topic.roundRobin + 1) % topic.partitions.length;
      }
      return {
        topic: message.topic,
        partition,
        key: message.key === null ? null : Buffer.from(message.key),
        value: message.value === null ? null : Buffer.from(message.value),
        headers: copyHeaders(message.headers),
      };
    });
  }

  produce(messages: readonly OutgoingMessage[]): void {
    const routed = this.route(messages);
    this.fault({ point: 'send', messages: routed });
    this.#append(routed);
  }

  #append(messages: readonly RoutedMessage[]): void {
    if (messages.length === 0) return;
    const timestamp = String(Date.now());
    const topics = new Set<string>();
    for (const message of messages) {
      const log = this.log(message.topic, message.partition);
      log.push({ ...message, offset: String(log.length), timestamp });
      topics.add(message.topic);
    }
    for (const topic of topics) for (const listener of [...this.#appendListeners]) listener(topic);
  }

  onAppend(listener: (topic: string) => void): () => void {
    this.#appendListeners.add(listener);
    return () => this.#appendListeners.delete(listener);
  }

  // ── consumer groups ────────────────────────────────────────────────────────────────────────────

  group(groupId: string): Group {
    let group = this.#groups.get(groupId);
    if (!group) {
      group = {
        generation: 0,
        members: [],
        assigned: new Set(),
        owners: new Map(),
        awaiting: undefined,
        rejoined: new Set(),
        round: 0,
        committed: new Map(),
        history: [],
      };
      this.#groups.set(groupId, group);
    }
    return group;
  }

  generation(groupId: string): number {
    return this.#groups.get(groupId)?.generation ?? 0;
  }

  memberId(groupId: string): string {
    this.#nextMemberId += 1;
    return `${groupId}-member-${this.#nextMemberId}`;
  }

  join(groupId: string, member: GroupMember): void {
    const group = this.group(groupId);
    group.members.push(member);
    this.#beginRebalance(group);
  }

  leave(groupId: string, memberId: string): void {
    const group = this.group(groupId);
    const index = group.members.findIndex((m) => m.id === memberId);
    if (index < 0) return;
    group.members.splice(index, 1);
    group.assigned.delete(memberId);
    group.rejoined.delete(memberId);
    if (group.awaiting) {
      group.awaiting.delete(memberId);
      this.#completeRebalance(group);
    } else {
      this.#beginRebalance(group);
    }
  }

  /**
   * Like Kafka's eager protocol: every member of the current generation first hears onRevoking (its last
   * chance to commit), and only once all of them acknowledged is the new generation assigned. Joins and
   * leaves during a rebalance fold into it, as they do on a broker.
   */
  #beginRebalance(group: Group): void {
    if (group.awaiting) return;
    group.round += 1;
    const round = group.round;
    const awaiting = new Set(group.members.filter((m) => group.assigned.has(m.id)).map((m) => m.id));
    group.awaiting = awaiting;
    for (const member of group.members) {
      if (!awaiting.has(member.id)) continue;
      member.revoke(() => {
        if (group.round !== round || !awaiting.delete(member.id)) return;
        group.rejoined.add(member.id);
        this.#completeRebalance(group);
      });
    }
    this.#completeRebalance(group);
  }

  #completeRebalance(group: Group): void {
    if (!group.awaiting || group.awaiting.size > 0) return;
    group.awaiting = undefined;
    group.rejoined.clear();
    this.#assign(group);
  }

  /**
   * Round-robin assignment: every subscribed partition, in topic and partition order, goes to the next
   * member in join order that subscribes its topic, and every member hears its full new share.
   */
  #assign(group: Group): void {
    group.generation += 1;
    group.assigned = new Set(group.members.map((m) => m.id));
    group.owners.clear();
    const shares = new Map<string, TopicPartition[]>(group.members.map((m) => [m.id, []]));
    const topics = [...new Set(group.members.flatMap((m) => m.topics))].sort();
    let next = 0;
    for (const topic of topics) {
      const count = this.topic(topic).partitions.length;
      for (let partition = 0; partition < count; partition++) {
        for (let tried = 0; tried < group.members.length; tried++) {
          const index = (next + tried) % group.members.length;
          const member = group.members[index];
          if (!member?.topics.includes(topic)) continue;
          shares.get(member.id)?.push({ topic, partition });
          group.owners.set(tpKey(topic, partition), member.id);
          next = (index + 1) % group.members.length;
          break;
        }
      }
    }
    for (const member of [...group.members]) member.assign({ generation: group.generation, partitions: shares.get(member.id) ?? [] });
  }

  /** Where a member starts on a newly assigned partition: the committed offset, else the beginning or the end. */
  startOffset(groupId: string, tp: TopicPartition, fromBeginning: boolean): number {
    const committed = this.#groups.get(groupId)?.committed.get(tpKey(tp.topic, tp.partition));
    if (committed) return Number(committed.offset);
    return fromBeginning ? 0 : this.log(tp.topic, tp.partition).length;
  }

  /** A consumer's commit: checked strictly (membership, ownership in this generation, not past the log end). */
  commit(groupId: string, memberId: string, offsets: readonly PartitionOffset[]): void {
    const group = this.group(groupId);
    const where = `commit by ${memberId} to group ${groupId}`;
    if (!group.members.some((m) => m.id === memberId)) {
      throw new StreamError('STATE_INVALID', `${where}: the consumer is not a member of the group (not started, stopped or crashed)`, {
        context: { groupId, memberId },
      });
    }
    if (group.rejoined.has(memberId)) {
      throw new StreamError('STATE_INVALID', `${where}: a rebalance is in progress and this member already gave up its partitions`, {
        context: { groupId, memberId, generation: group.generation },
      });
    }
    if (offsets.length === 0) return;
    for (const o of offsets) {
      const offset = parseOffset(o.offset, where);
      const owner = group.owners.get(tpKey(o.topic, o.partition));
      if (owner !== memberId) {
        throw new StreamError(
          'STATE_INVALID',
          `${where}: ${tpName(o)} is not assigned to this member in generation ${group.generation}${owner ? ` (${owner} owns it)` : ''}`,
          { context: { groupId, memberId, topic: o.topic, partition: o.partition, generation: group.generation } },
        );
      }
      const end = this.log(o.topic, o.partition).length;
      if (offset > end) {
        throw new StreamError('STATE_INVALID', `${where}: offset ${offset} of ${tpName(o)} is past its log end ${end}`, {
          context: { groupId, topic: o.topic, partition: o.partition, offset: o.offset },
        });
      }
    }
    this.fault({ point: 'commit', groupId, memberId, offsets });
    this.#store(group, { groupId, generation: group.generation, offsets: [...offsets], memberId, transactionalId: null });
  }

  /** Validates offsets a transaction will commit: Kafka checks that the partition exists, not who owns it. */
  checkTransactionalOffsets(groupId: string, offsets: readonly PartitionOffset[]): void {
    for (const o of offsets) {
      parseOffset(o.offset, `transactional offsets for group ${groupId}`);
      this.log(o.topic, o.partition);
    }
  }

  #store(group: Group, record: CommitRecord): void {
    for (const o of record.offsets) group.committed.set(tpKey(o.topic, o.partition), { topic: o.topic, partition: o.partition, offset: o.offset });
    group.history.push(record);
  }

  committed(groupId: string): PartitionOffset[] {
    return [...(this.#groups.get(groupId)?.committed.values() ?? [])].sort(byTopicPartition);
  }

  history(groupId: string): CommitRecord[] {
    return [...(this.#groups.get(groupId)?.history ?? [])];
  }

  // ── transactions ───────────────────────────────────────────────────────────────────────────────

  /** Registers a transactional producer: the new epoch fences every producer holding an older one. */
  registerProducer(transactionalId: string): number {
    const epoch = (this.#epochs.get(transactionalId) ?? 0) + 1;
    this.#epochs.set(transactionalId, epoch);
    return epoch;
  }

  epoch(transactionalId: string): number {
    return this.#epochs.get(transactionalId) ?? 0;
  }

  /** Appends a transaction's messages and writes its offsets in one step: nothing is visible before, all of it after. */
  commitTransaction(transactionalId: string, messages: readonly RoutedMessage[], offsets: readonly GroupOffsets[]): void {
    this.fault({ point: 'transaction', transactionalId, messages, offsets });
    this.#append(messages);
    for (const { groupId, offsets: list } of offsets) {
      if (list.length === 0) continue;
      const group = this.group(groupId);
      this.#store(group, { groupId, generation: group.generation, offsets: [...list], memberId: null, transactionalId });
    }
  }

  // ── faults ─────────────────────────────────────────────────────────────────────────────────────

  inject<P extends FaultPoint>(point: P, hook: FaultHook<P>): () => void {
    const hooks = this.#hooks.get(point) ?? new Set();
    this.#hooks.set(point, hooks);
    // The map is keyed by point, so a hook only ever sees events of its own point.
    const stored = hook as (event: FaultEvent) => void;
    hooks.add(stored);
    return () => hooks.delete(stored);
  }

  fault(event: FaultEvent): void {
    for (const hook of [...(this.#hooks.get(event.point) ?? [])]) hook(event);
  }
}

let coreOf: (broker: MemoryBroker) => BrokerCore;

/**
 * An in-memory Kafka cluster: topics of append-only partitions, consumer groups with eager round-robin
 * rebalances, and transactional producers with fencing. Share one between several
 * {@link MemoryTransport}s to run several app instances against the same "cluster".
 *
 * @example
 * const broker = new MemoryBroker();
 * broker.createTopic('orders', 3);
 * const transport = new MemoryTransport(broker);
 */
export class MemoryBroker {
  readonly #core = new BrokerCore();

  static {
    coreOf = (broker) => broker.#core;
  }

  /**
   * Creates a topic; returns false, leaving it untouched, when it already exists.
   *
   * @example
   * broker.createTopic('orders', 3);
   */
  createTopic(name: string, partitions = 1): boolean {
    return this.#core.createTopic(name, partitions);
  }

  /** The names of all topics, sorted. */
  topics(): string[] {
    return this.#core.topicNames();
  }

  /**
   * The messages of a topic (all partitions, partition by partition in offset order) or of one partition.
   * Throws TOPIC_MISSING for an unknown topic or partition.
   *
   * @example
   * expect(broker.messages('orders', 0).map((m) => m.value?.toString())).toEqual(['a', 'b']);
   */
  messages(topic: string, partition?: number): StoredMessage[] {
    if (partition !== undefined) return [...this.#core.log(topic, partition)];
    return this.#core.topic(topic).partitions.flat();
  }

  /** The log end offset of every partition of a topic. */
  endOffsets(topic: string): PartitionOffset[] {
    return this.#core.endOffsets(topic);
  }

  /**
   * A group's committed offsets, sorted by topic and partition (empty for an unknown group).
   *
   * @example
   * expect(broker.committed('emailer')).toEqual([{ topic: 'orders', partition: 0, offset: '2' }]);
   */
  committed(groupId: string): PartitionOffset[] {
    return this.#core.committed(groupId);
  }

  /** Every accepted commit of a group in order, by consumers and by transactions. Rejected commits are not listed. */
  commitHistory(groupId: string): CommitRecord[] {
    return this.#core.history(groupId);
  }

  /** A group's current generation: 0 before anyone joined, then one more per join or leave. */
  generation(groupId: string): number {
    return this.#core.generation(groupId);
  }

  /**
   * Runs `hook` before every operation at `point`; if it throws, the operation fails with that error and
   * changes nothing (a throwing `fetch` hook crashes the consumer). Returns a function that removes the hook.
   *
   * @example
   * const remove = broker.inject('commit', (e) => { if (e.groupId === 'emailer') throw new Error('broker down'); });
   */
  inject<P extends FaultPoint>(point: P, hook: FaultHook<P>): () => void {
    return this.#core.inject(point, hook);
  }

  /**
   * Makes the next `times` operations at `point` fail with `error` (a TRANSPORT_FAILED StreamError by default).
   *
   * @example
   * broker.failNext('commit', 2);
   */
  failNext(point: FaultPoint, times = 1, error?: Error): () => void {
    let left = times;
    const remove = this.#core.inject(point, () => {
      if (left <= 0) return;
      left -= 1;
      if (left === 0) remove();
      throw error ?? new StreamError('TRANSPORT_FAILED', `injected ${point} failure`, { context: { injected: true } });
    });
    return remove;
  }
}

type ConsumerPhase = 'new' | 'joining' | 'running' | 'stopped';

/** What the group told a member, delivered to the listener in order and before any further batch. */
type GroupEvent = { readonly kind: 'revoking'; readonly ack: () => void } | { readonly kind: 'assignment'; readonly assignment: Assignment };

interface PendingBatch {
  readonly key: string;
  readonly generation: number;
  readonly position: number;
  readonly batch: FetchedBatch;
}

/** A group member with its own fetch loop, one batch per macrotask so partitions interleave and the runtime gets to run. */
class MemoryConsumer implements TransportConsumer {
  readonly #core: BrokerCore;
  readonly #options: ConsumerOptions;
  readonly #maxBatchSize: number;
  readonly #id: string;
  #phase: ConsumerPhase = 'new';
  #listener: ConsumerListener | undefined;
  readonly #events: GroupEvent[] = [];
  /** Between onRevoking and the next assignment: nothing is fetched, as a rejoining kafkajs consumer does not fetch. */
  #rebalancing = false;
  #generation = 0;
  #assigned: readonly TopicPartition[] = [];
  readonly #positions = new Map<string, number>();
  readonly #paused = new Set<string>();
  readonly #heldUntil = new Map<string, number>();
  #cursor = 0;
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #joined: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(core: BrokerCore, options: ConsumerOptions, maxBatchSize: number) {
    this.#core = core;
    this.#options = options;
    this.#maxBatchSize = maxBatchSize;
    this.#id = core.memberId(options.groupId);
  }

  async start(listener: ConsumerListener): Promise<void> {
    const { groupId, topics } = this.#options;
    if (this.#phase !== 'new') {
      throw new StreamError('STATE_INVALID', `consumer ${this.#id} of group ${groupId} was already started (or stopped): create a new consumer`);
    }
    if (topics.length === 0) throw new StreamError('CONFIG_INVALID', `consumer of group ${groupId}: subscribe at least one topic`);
    for (const topic of topics) this.#core.topic(topic);
    this.#listener = listener;
    this.#phase = 'joining';
    const joined = new Promise<void>((resolve, reject) => (this.#joined = { resolve, reject }));
    const subscribed = new Set(topics);
    this.#unsubscribe = this.#core.onAppend((topic) => {
      if (subscribed.has(topic)) this.#wake();
    });
    this.#core.join(groupId, {
      id: this.#id,
      topics: [...subscribed],
      revoke: (ack) => this.#enqueue({ kind: 'revoking', ack }),
      assign: (assignment) => this.#enqueue({ kind: 'assignment', assignment }),
    });
    await joined;
  }

  pause(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.#paused.add(tpKey(tp.topic, tp.partition));
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition);
      this.#paused.delete(key);
      this.#heldUntil.delete(key);
    }
    this.#wake();
  }

  seek(position: PartitionOffset): void {
    const key = tpKey(position.topic, position.partition);
    if (!this.#positions.has(key)) return;
    this.#positions.set(key, Number(position.offset));
    this.#heldUntil.delete(key);
    this.#wake();
  }

  async commit(offsets: readonly PartitionOffset[]): Promise<void> {
    this.#core.commit(this.#options.groupId, this.#id, offsets);
  }

  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return;
    const member = this.#phase !== 'new';
    this.#halt();
    if (member) this.#core.leave(this.#options.groupId, this.#id);
    this.#joined?.resolve();
    this.#joined = undefined;
  }

  #enqueue(event: GroupEvent): void {
    this.#events.push(event);
    this.#wake();
  }

  #wake(): void {
    if ((this.#phase !== 'joining' && this.#phase !== 'running') || this.#immediate) return;
    this.#immediate = setImmediate(() => this.#tick());
  }

  #tick(): void {
    this.#immediate = undefined;
    const listener = this.#listener;
    if (!listener || this.#phase === 'stopped' || this.#phase === 'new') return;
    try {
      const event = this.#events.shift();
      if (event) {
        this.#handle(event, listener);
        this.#wake();
        return;
      }
      if (this.#phase !== 'running' || this.#rebalancing) return;
      const next = this.#nextBatch();
      if (!next) return;
      const accepted = listener.onBatch(next.batch);
      this.#advance(next, accepted);
      this.#wake();
    } catch (error) {
      this.#crash(toError(error));
    }
  }

  #handle(event: GroupEvent, listener: ConsumerListener): void {
    if (event.kind === 'revoking') {
      this.#rebalancing = true;
      listener.onRevoking();
      // Acknowledge on the next macrotask: commits the listener started (promise chains) go out first.
      setImmediate(event.ack);
      return;
    }
    this.#adopt(event.assignment);
    this.#rebalancing = false;
    listener.onAssignment(event.assignment);
    if (this.#phase === 'joining') {
      this.#phase = 'running';
      this.#joined?.resolve();
      this.#joined = undefined;
    }
  }

  /**
   * Eager protocol: every position of the new generation starts from the group's committed offset. Pauses
   * of partitions this member kept survive; pauses of partitions it lost are dropped, because the runtime
   * treats a partition it gets (back) as fresh and unpaused. The kafkajs transport keeps the same contract.
   */
  #adopt(assignment: Assignment): void {
    this.#generation = assignment.generation;
    this.#assigned = [...assignment.partitions];
    this.#positions.clear();
    this.#heldUntil.clear();
    this.#cursor = 0;
    for (const tp of assignment.partitions) {
      this.#positions.set(tpKey(tp.topic, tp.partition), this.#core.startOffset(this.#options.groupId, tp, this.#options.fromBeginning));
    }
    for (const key of [...this.#paused]) if (!this.#positions.has(key)) this.#paused.delete(key);
  }

  /** The next partition with something to deliver, round-robin from the one after the last delivered. */
  #nextBatch(): PendingBatch | undefined {
    const now = Date.now();
    let wakeAt = Number.POSITIVE_INFINITY;
    const count = this.#assigned.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#cursor + i) % count;
      const tp = this.#assigned[index];
      if (!tp) continue;
      const key = tpKey(tp.topic, tp.partition);
      if (this.#paused.has(key)) continue;
      const heldUntil = this.#heldUntil.get(key);
      if (heldUntil !== undefined && heldUntil > now) {
        wakeAt = Math.min(wakeAt, heldUntil);
        continue;
      }
      const log = this.#core.log(tp.topic, tp.partition);
      const position = this.#positions.get(key) ?? log.length;
      if (position >= log.length) continue;
      this.#cursor = index + 1;
      this.#core.fault({ point: 'fetch', groupId: this.#options.groupId, memberId: this.#id, topic: tp.topic, partition: tp.partition });
      const messages = this.#take(log, position);
      return {
        key,
        generation: this.#generation,
        position,
        batch: { topic: tp.topic, partition: tp.partition, messages, highWatermark: String(log.length) },
      };
    }
    if (wakeAt !== Number.POSITIVE_INFINITY) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#wake();
      }, wakeAt - now);
    }
    return undefined;
  }

  /** Up to maxBatchSize messages and, like a Kafka fetch, about maxBytesPerPartition bytes (always at least one message). */
  #take(log: readonly StoredMessage[], position: number): StoredMessage[] {
    const maxBytes = this.#options.maxBytesPerPartition > 0 ? this.#options.maxBytesPerPartition : Number.POSITIVE_INFINITY;
    const end = Math.min(log.length, position + this.#maxBatchSize);
    const out: StoredMessage[] = [];
    let bytes = 0;
    for (let offset = position; offset < end; offset++) {
      const message = log[offset];
      if (!message) break;
      bytes += messageBytes(message);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(message);
    }
    return out;
  }

  #advance(next: PendingBatch, accepted: number): void {
    const size = next.batch.messages.length;
    if (!Number.isInteger(accepted) || accepted < 0 || accepted > size) {
      throw new StreamError('STATE_INVALID', `onBatch returned ${accepted} for a batch of ${size} messages of ${tpName(next.batch)}`, {
        context: { topic: next.batch.topic, partition: next.batch.partition },
      });
    }
    // A stop, or an assignment adopted while the listener ran, makes this batch's position meaningless.
    if (this.#phase !== 'running' || this.#generation !== next.generation) return;
    this.#positions.set(next.key, next.position + accepted);
    if (accepted < size && !this.#paused.has(next.key)) {
      // The listener kept some back without pausing: fetch them again soon rather than in a hot loop.
      this.#heldUntil.set(next.key, Date.now() + REDELIVERY_DELAY_MS);
    } else {
      this.#heldUntil.delete(next.key);
    }
  }

  #crash(error: Error): void {
    if (this.#phase === 'stopped') return;
    const joining = this.#phase === 'joining';
    this.#halt();
    this.#core.leave(this.#options.groupId, this.#id);
    if (joining) {
      this.#joined?.reject(error);
      this.#joined = undefined;
      return;
    }
    this.#listener?.onCrash(error);
  }

  /** After this, no listener call happens: every scheduled tick is cancelled and the phase is final. */
  #halt(): void {
    this.#phase = 'stopped';
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}

class MemoryProducer implements TransportProducer {
  readonly #core: BrokerCore;
  readonly #transactionalId: string | undefined;
  #connected = false;
  #epoch = 0;
  #open: MemoryTransaction | undefined;

  constructor(core: BrokerCore, options: ProducerOptions) {
    this.#core = core;
    this.#transactionalId = options.transactionalId;
  }

  async connect(): Promise<void> {
    if (this.#connected) return;
    if (this.#transactionalId !== undefined) this.#epoch = this.#core.registerProducer(this.#transactionalId);
    this.#connected = true;
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.check('send');
    if (this.#transactionalId !== undefined) {
      throw new StreamError('STATE_INVALID', `producer ${this.#transactionalId} is transactional: send through transaction()`, {
        context: { transactionalId: this.#transactionalId },
      });
    }
    this.#core.produce(messages);
    // A network round trip: a caller sending in a loop lets fetch loops and handlers run in between, as on
    // a real broker, instead of starving them with promises that only ever resolve as microtasks.
    await new Promise((resolve) => setImmediate(resolve));
  }

  async transaction(): Promise<TransportTransaction> {
    this.check('transaction');
    const transactionalId = this.#transactionalId;
    if (transactionalId === undefined) {
      throw new StreamError('STATE_INVALID', 'transaction() needs a transactional producer: create it with { transactionalId }');
    }
    if (this.#open) {
      throw new StreamError('STATE_INVALID', `producer ${transactionalId} already has an open transaction: commit or abort it first`, {
        context: { transactionalId },
      });
    }
    const transaction = new MemoryTransaction(this.#core, transactionalId, this);
    this.#open = transaction;
    return transaction;
  }

  async disconnect(): Promise<void> {
    // An open transaction dies with its producer, as Kafka aborts it once the producer is gone.
    this.#open = undefined;
    this.#connected = false;
  }

  /** Throws TRANSPORT_FAILED when the producer is not connected or was fenced by a newer one with its transactional id. */
  check(operation: string): void {
    const id = this.#transactionalId;
    if (!this.#connected) {
      throw new StreamError('TRANSPORT_FAILED', `producer${id === undefined ? '' : ` ${id}`} is not connected: call connect() first`, {
        context: { operation, ...(id === undefined ? {} : { transactionalId: id }) },
      });
    }
    if (id !== undefined && this.#core.epoch(id) !== this.#epoch) {
      throw new StreamError(
        'TRANSPORT_FAILED',
        `producer ${id} was fenced by a newer producer with the same transactional id (epoch ${this.#core.epoch(id)} > ${this.#epoch})`,
        { context: { operation, transactionalId: id, fenced: true } },
      );
    }
  }

  /** The transaction is over: another may begin. */
  release(transaction: MemoryTransaction): void {
    if (this.#open === transaction) this.#open = undefined;
  }

  isOpen(transaction: MemoryTransaction): boolean {
    return this.#open === transaction;
  }
}

/** Buffers sends and offsets; commit makes them visible together, abort drops them. */
class MemoryTransaction implements TransportTransaction {
  readonly #core: BrokerCore;
  readonly #transactionalId: string;
  readonly #producer: MemoryProducer;
  readonly #messages: RoutedMessage[] = [];
  /** Group id to partition key to offset: a later sendOffsets for the same partition wins, as in Kafka. */
  readonly #offsets = new Map<string, Map<string, PartitionOffset>>();
  #state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(core: BrokerCore, transactionalId: string, producer: MemoryProducer) {
    this.#core = core;
    this.#transactionalId = transactionalId;
    this.#producer = producer;
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#check('send');
    this.#messages.push(...this.#core.route(messages));
  }

  async sendOffsets(groupId: string, offsets: readonly PartitionOffset[]): Promise<void> {
    this.#check('sendOffsets');
    this.#core.checkTransactionalOffsets(groupId, offsets);
    const group = this.#offsets.get(groupId) ?? new Map<string, PartitionOffset>();
    this.#offsets.set(groupId, group);
    for (const o of offsets) group.set(tpKey(o.topic, o.partition), { topic: o.topic, partition: o.partition, offset: o.offset });
  }

  async commit(): Promise<void> {
    this.#check('commit');
    const offsets = [...this.#offsets].map(([groupId, map]) => ({ groupId, offsets: [...map.values()] }));
    // A failed commit leaves the transaction open so that the caller can abort it, as with Kafka.
    this.#core.commitTransaction(this.#transactionalId, this.#messages, offsets);
    this.#finish('committed');
  }

  async abort(): Promise<void> {
    this.#check('abort');
    this.#finish('aborted');
  }

  #finish(state: 'committed' | 'aborted'): void {
    this.#state = state;
    this.#messages.length = 0;
    this.#offsets.clear();
    this.#producer.release(this);
  }

  #check(operation: string): void {
    if (this.#state !== 'open') {
      throw new StreamError('STATE_INVALID', `transaction of ${this.#transactionalId} was already ${this.#state}`, {
        context: { transactionalId: this.#transactionalId, operation },
      });
    }
    this.#producer.check(operation);
    if (!this.#producer.isOpen(this)) {
      throw new StreamError('STATE_INVALID', `transaction of ${this.#transactionalId} ended when its producer disconnected`, {
        context: { transactionalId: this.#transactionalId, operation },
      });
    }
  }
}

class MemoryAdmin implements TransportAdmin {
  readonly #core: BrokerCore;

  constructor(core: BrokerCore) {
    this.#core = core;
  }

  async connect(): Promise<void> {}

  async createTopics(topics: readonly TopicSpec[]): Promise<string[]> {
    const created: string[] = [];
    for (const spec of topics) if (this.#core.createTopic(spec.name, spec.partitions)) created.push(spec.name);
    return created;
  }

  async listTopics(): Promise<string[]> {
    return this.#core.topicNames();
  }

  async endOffsets(topic: string): Promise<PartitionOffset[]> {
    return this.#core.endOffsets(topic);
  }

  async committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    this.#core.topic(topic);
    return this.#core.committed(groupId).filter((o) => o.topic === topic);
  }

  async disconnect(): Promise<void> {}
}

/**
 * The in-memory {@link Transport}: consumers, producers and admins on a {@link MemoryBroker}.
 *
 * @example
 * const app = new App({ id: 'emailer', transport: new MemoryTransport() });
 */
export class MemoryTransport implements Transport {
  readonly name = 'memory';
  readonly broker: MemoryBroker;
  readonly #maxBatchSize: number;

  constructor(broker: MemoryBroker = new MemoryBroker(), options: MemoryTransportOptions = {}) {
    const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new StreamError('CONFIG_INVALID', `memory transport: maxBatchSize must be a positive integer, got ${maxBatchSize}`);
    }
    this.broker = broker;
    this.#maxBatchSize = maxBatchSize;
  }

  consumer(options: ConsumerOptions): TransportConsumer {
    return new MemoryConsumer(coreOf(this.broker), options, this.#maxBatchSize);
  }

  producer(options: ProducerOptions = {}): TransportProducer {
    return new MemoryProducer(coreOf(this.broker), options);
  }

  admin(): TransportAdmin {
    return new MemoryAdmin(coreOf(this.broker));
  }
}
