import { StreamError, toError } from '../../errors.js';
import { memberInfoBytes, tpKey, tpName } from '../shared.js';
import type {
  Assignment,
  ConsumerListener,
  ConsumerOptions,
  FetchedBatch,
  PartitionOffset,
  RawMessage,
  TopicPartition,
  TransportConsumer,
  GroupMetadata,
} from '../transport.js';
import type { BrokerCore } from './broker.js';
import type { StoredMessage } from './log.js';

/** How long a partition whose batch was only partly accepted, and which was not paused, waits before it is fetched again. */
const REDELIVERY_DELAY_MS = 10;

/** What a fetch counts against `maxBytesPerPartition`: key, value and headers. */
function messageBytes(message: RawMessage): number {
  let size = (message.key?.length ?? 0) + (message.value?.length ?? 0);
  for (const [name, value] of Object.entries(message.headers)) size += name.length + (value?.length ?? 0);
  return size;
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
export class MemoryConsumer implements TransportConsumer {
  readonly #core: BrokerCore;
  readonly #options: ConsumerOptions;
  readonly #maxBatchSize: number;
  /** This member's id: a new one after the group expelled it and it joined again. */
  #id: string;
  /** Joined again after an expulsion: the next assignment says `rejoined`. */
  #rejoined = false;
  #expelTimer: NodeJS.Timeout | undefined;
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
    this.#id = core.groups.memberId(options.groupId);
    // Checked as the Kafka transports check it, so a too-long address fails here too.
    memberInfoBytes(options.groupId, options.memberInfo);
  }

  async start(listener: ConsumerListener): Promise<void> {
    const { groupId, topics } = this.#options;
    if (this.#phase !== 'new') {
      throw new StreamError('STATE_INVALID', `consumer ${this.#id} of group ${groupId} was already started (or stopped): create a new consumer`);
    }
    if (topics.length === 0) throw new StreamError('CONFIG_INVALID', `consumer of group ${groupId}: subscribe at least one topic`);
    for (const topic of topics) this.#core.logs.topic(topic);
    this.#listener = listener;
    this.#phase = 'joining';
    const joined = new Promise<void>((resolve, reject) => (this.#joined = { resolve, reject }));
    const subscribed = new Set(topics);
    this.#unsubscribe = this.#core.logs.onAppend((topic) => {
      if (subscribed.has(topic)) this.#wake();
    });
    this.#join();
    await joined;
  }

  #join(): void {
    this.#core.groups.join(this.#options.groupId, {
      id: this.#id,
      topics: [...new Set(this.#options.topics)],
      ...(this.#options.memberInfo ? { info: this.#options.memberInfo } : {}),
      revoke: (ack) => this.#enqueue({ kind: 'revoking', ack }),
      assign: (assignment) => this.#enqueue({ kind: 'assignment', assignment }),
      expelled: () => this.#expelled(),
    });
  }

  /**
   * The group removed this member, as when its session expired while it stalled. It fetches nothing more
   * (stalled), and finds out on its next heartbeat: then, like kafkajs answering UNKNOWN_MEMBER_ID, it
   * joins again under a new member id without onRevoking; the assignment that follows says `rejoined`.
   * What the runtime holds of its partitions meanwhile is not its to finish any more.
   */
  #expelled(): void {
    this.#rebalancing = true;
    clearTimeout(this.#expelTimer);
    this.#expelTimer = setTimeout(() => {
      this.#expelTimer = undefined;
      if (this.#phase !== 'running') return;
      this.#id = this.#core.groups.memberId(this.#options.groupId);
      this.#rejoined = true;
      this.#join();
    }, this.#options.heartbeatIntervalMs);
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
    this.#core.groups.commit(this.#options.groupId, this.#id, offsets);
  }

  /** This member's id and the generation of its current assignment; undefined before its first assignment. */
  protected currentGroupMetadata(): GroupMetadata | undefined {
    return this.#phase === 'running' && this.#generation > 0 ? { generationId: this.#generation, memberId: this.#id } : undefined;
  }

  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return;
    const member = this.#phase !== 'new';
    this.#halt();
    if (member) this.#core.groups.leave(this.#options.groupId, this.#id);
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
      const commits = listener.onRevoking();
      // Acknowledge once the commits the listener started are done (as the kafkajs transport holds its
      // rejoin for them), and never before the next macrotask, so promise chains go out first.
      void Promise.resolve(commits)
        .catch(() => undefined)
        .then(() => setImmediate(event.ack));
      return;
    }
    this.#adopt(event.assignment);
    this.#rebalancing = false;
    const rejoined = this.#rejoined;
    this.#rejoined = false;
    listener.onAssignment(rejoined ? { ...event.assignment, rejoined } : event.assignment);
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
      this.#positions.set(tpKey(tp.topic, tp.partition), this.#core.groups.startOffset(this.#options.groupId, tp, this.#options.fromBeginning));
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
      const log = this.#core.logs.log(tp.topic, tp.partition);
      const position = this.#positions.get(key) ?? log.length;
      if (position >= log.length) continue;
      this.#cursor = index + 1;
      this.#core.faults.run({ point: 'fetch', groupId: this.#options.groupId, memberId: this.#id, topic: tp.topic, partition: tp.partition });
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
    this.#core.groups.leave(this.#options.groupId, this.#id);
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
    clearTimeout(this.#expelTimer);
    this.#expelTimer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}

/**
 * A memory consumer that tells its group metadata, as the platformatic transport's does: with it the runtime
 * commits exactly-once offsets checked against the group's generation (KIP-447), one transactional producer
 * per consumer. See {@link MemoryTransportOptions.groupMetadata}.
 */
export class GroupMetadataMemoryConsumer extends MemoryConsumer {
  groupMetadata(): GroupMetadata | undefined {
    return this.currentGroupMetadata();
  }
}
