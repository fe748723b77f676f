/**
 * The seam between the runtime and a broker. The kafkajs transport and the in-memory transport both
 * implement it, so the runtime (commit tracking, retries, dead letters, concurrency) is the same code
 * in unit tests and in production.
 */

/**
 * A record's headers as bytes. Kafka allows a header without a value: it is `null` here. Always an object
 * without a prototype (build it with {@link emptyRawHeaders}), so that a header named `__proto__` or
 * `constructor` is an ordinary entry. A name repeated on the wire keeps its last value.
 */
export type RawHeaders = Readonly<Record<string, Buffer | null>>;

/** A new, empty, prototype-free headers object to fill. */
export function emptyRawHeaders(): Record<string, Buffer | null> {
  return Object.create(null) as Record<string, Buffer | null>;
}

/**
 * The headers of every record that has none (most), shared: frozen, so nobody can add to it by accident, and
 * no prototype-free object is built per record.
 */
export const NO_RAW_HEADERS: RawHeaders = Object.freeze(emptyRawHeaders());

/** The bytes a record's headers take: names (UTF-8) and values. */
export function rawHeaderBytes(headers: RawHeaders): number {
  let size = 0;
  for (const name in headers) size += Buffer.byteLength(name) + (headers[name]?.length ?? 0);
  return size;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface PartitionOffset extends TopicPartition {
  /** The next offset to read, as a decimal string (Kafka's commit convention). */
  readonly offset: string;
}

/** A message as fetched from a partition. */
export interface RawMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: RawHeaders;
  readonly offset: string;
  /** Milliseconds since the epoch, as a decimal string. */
  readonly timestamp: string;
}

/** Messages of one partition, in offset order. */
export interface FetchedBatch extends TopicPartition {
  readonly messages: readonly RawMessage[];
  /** The partition's log end offset when fetched: used for lag. */
  readonly highWatermark: string;
}

/** The partitions this member owns in one generation of its group. */
export interface Assignment {
  readonly generation: number;
  readonly partitions: readonly TopicPartition[];
  /**
   * This member joined the group anew (a new member id): the group had removed it (its session expired) or
   * its consumer restarted, without onRevoking. Others may have owned its partitions since, so nothing of
   * its previous assignment carries over, also for partitions listed again.
   */
  readonly rejoined?: boolean;
}

/** What the runtime hears from a consumer. */
export interface ConsumerListener {
  /** A new generation's assignment. Partitions not listed are no longer ours. */
  onAssignment(assignment: Assignment): void;
  /**
   * Messages to process. Returns how many (a prefix) were accepted; the transport fetches the rest again
   * once the partition is resumed. Must not block: the runtime buffers and pauses instead.
   */
  onBatch(batch: FetchedBatch): number;
  /**
   * The group started rebalancing and this member's partitions are about to be revoked: the last moment
   * its commits are accepted for them. Must not block; it may return the promise of those last commits,
   * which a transport that can hold its rejoin (kafkajs) waits for, up to a bound, before it rejoins: the
   * coordinator handles one request of a connection at a time, so a commit written after the JoinGroup
   * waits for the join to complete and is refused as of the old generation.
   */
  onRevoking(): void | Promise<void>;
  /** The consumer stopped for good (not for a rebalance). */
  onCrash(error: Error): void;
}

export interface ConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Where a group without committed offsets starts. */
  readonly fromBeginning: boolean;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly rebalanceTimeoutMs: number;
  /** Read only committed transactional records (always true for exactly-once pipelines). */
  readonly readCommitted: boolean;
  readonly maxBytesPerPartition: number;
  /**
   * A short text this member publishes to its group (Kafka: the `userData` of its subscription metadata),
   * which {@link TransportAdmin.describeGroup} returns for it to anyone: the app's advertised ops address.
   * At most {@link MAX_MEMBER_INFO_BYTES} bytes of UTF-8.
   */
  readonly memberInfo?: string;
}

/** The most bytes of {@link ConsumerOptions.memberInfo}: it travels in every JoinGroup and DescribeGroups. */
export const MAX_MEMBER_INFO_BYTES = 1024;

/** One member of a consumer group as its coordinator describes it. */
export interface GroupMemberDescription {
  readonly memberId: string;
  readonly clientId: string;
  /** What the member published with {@link ConsumerOptions.memberInfo}; undefined when nothing (or not UTF-8 text). */
  readonly memberInfo: string | undefined;
  /** Its partitions in the group's current generation (empty while the group rebalances). */
  readonly assignment: readonly TopicPartition[];
}

/**
 * A consumer group's members and their assignments. `stable`: every member has its share of the current
 * generation; `rebalancing`: members are (re)joining and the assignments are not settled (Kafka's
 * PreparingRebalance and CompletingRebalance); `empty`: no member (also an unknown group).
 */
export interface GroupDescription {
  readonly groupId: string;
  readonly state: 'stable' | 'rebalancing' | 'empty';
  readonly members: readonly GroupMemberDescription[];
}

/**
 * Who commits a group's offsets in a transaction (KIP-447): the broker refuses a transactional offset commit
 * whose generation or member id is no longer the group's (a zombie's), as it refuses a consumer's commit.
 */
export interface GroupMetadata {
  /** The group generation of the member's current assignment (Kafka's generation id). */
  readonly generationId: number;
  readonly memberId: string;
}

export interface TransportConsumer {
  /**
   * This member's id in its group and the generation (KIP-848: member epoch) to commit the partitions of its
   * last assignment with; undefined before the first assignment. It must not move on to a generation that
   * no longer includes a partition before onAssignment told the runtime so (else a transaction could commit
   * a lost partition's offsets). A transport whose transactions check
   * {@link TransportTransaction.sendOffsets}' group metadata (KIP-447) has it; the runtime then runs
   * exactly-once with one transactional producer per consumer instead of one per input partition.
   */
  groupMetadata?(): GroupMetadata | undefined;
  /** Connects, subscribes and joins the group; resolves once the consumer is running. */
  start(listener: ConsumerListener): Promise<void>;
  pause(partitions: readonly TopicPartition[]): void;
  resume(partitions: readonly TopicPartition[]): void;
  /**
   * Moves the fetch position of an assigned partition: its next batch starts at `position.offset`, and
   * batches of it fetched before are not delivered. Used with the partition paused (see the runtime's
   * exactly-once claim); a partition not assigned now is ignored.
   */
  seek(position: PartitionOffset): void;
  /** Commits offsets for the current generation. */
  commit(offsets: readonly PartitionOffset[]): Promise<void>;
  /** Stops fetching, leaves the group and disconnects. */
  stop(): Promise<void>;
}

/** A message to produce. */
export interface OutgoingMessage {
  readonly topic: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: RawHeaders;
  readonly partition?: number;
}

export interface ProducerOptions {
  /**
   * Makes the producer transactional. Per input partition (`<group>.<topic>.<partition>`) where the consumer
   * has no {@link TransportConsumer.groupMetadata}, so that the next owner of a partition fences the previous
   * one; one per consumer (`<group>.<uuid>`) where it has, the group generation fencing zombies instead.
   */
  readonly transactionalId?: string;
}

export interface TransportTransaction {
  send(messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Commits the consumer group's offsets as part of this transaction. With `group` (KIP-447, transports
   * whose consumers have {@link TransportConsumer.groupMetadata}) the broker checks the member and its
   * generation and refuses a stale one: a `StreamError` whose context has `groupFenced: true`.
   */
  sendOffsets(groupId: string, offsets: readonly PartitionOffset[], group?: GroupMetadata): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface TransportProducer {
  connect(): Promise<void>;
  send(messages: readonly OutgoingMessage[]): Promise<void>;
  /** Begins a transaction (transactional producers only). */
  transaction(): Promise<TransportTransaction>;
  disconnect(): Promise<void>;
}

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly config?: Readonly<Record<string, string>>;
}

export interface TransportAdmin {
  connect(): Promise<void>;
  /** Creates the topics that do not exist yet; returns the names it created. */
  createTopics(topics: readonly TopicSpec[]): Promise<string[]>;
  listTopics(): Promise<string[]>;
  /** Log end offsets of every partition of a topic. */
  endOffsets(topic: string): Promise<PartitionOffset[]>;
  /** A group's committed offsets for a topic (partitions without a commit are left out). */
  committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]>;
  /**
   * A consumer group's members as its coordinator knows them now: each member's assignment and the
   * {@link ConsumerOptions.memberInfo} it published. Any client may ask, member of the group or not.
   */
  describeGroup(groupId: string): Promise<GroupDescription>;
  disconnect(): Promise<void>;
}

/** What {@link Transport.readPartition} reads and where its messages go. */
export interface ReadPartitionOptions extends TopicPartition {
  /**
   * Where the read starts (default the partition's earliest offset): a table's restore from its local
   * store's checkpoint, a global table following its topic from where its previous read ended. Below the partition's earliest offset (retention deleted it) the read rejects with
   * a `StreamError` `STATE_INVALID` whose context has `outOfRange: true`, never silently starts elsewhere.
   */
  readonly start?: number;
  /**
   * Where the read ends: once its position (the offset after the last record or marker read) reaches this
   * offset, typically the partition's end offset read before. Never "a record at end - 1 was seen":
   * compaction and transaction markers leave gaps in the offsets.
   */
  readonly end: number;
  /** Aborts the read: it rejects with the signal's reason. */
  readonly signal: AbortSignal;
  /** Committed records in offset order, a batch at a time; must not block. */
  onMessages(messages: readonly RawMessage[]): void;
}

/** A broker connection factory: kafkajs for production, memory for tests. */
export interface Transport {
  readonly name: string;
  /**
   * Reads one partition from its earliest offset (or `start`), committed records only, outside any consumer
   * group (a table's restore from its changelog, a global table's load and follow). Resolves once the position
   * reaches `end`.
   */
  readPartition?(options: ReadPartitionOptions): Promise<void>;
  consumer(options: ConsumerOptions): TransportConsumer;
  producer(options?: ProducerOptions): TransportProducer;
  admin(): TransportAdmin;
}
