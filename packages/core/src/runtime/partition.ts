import { StreamError } from '../errors.js';
import { rawHeaderBytes, type RawHeaders, type OutgoingMessage, type RawMessage } from '../transport/transport.js';
import type { AnyTable, PartitionStore } from '../table.js';
import { CommitTracker } from './commit-tracker.js';
import { Queue } from './queue.js';

/** One message on its way through one agent. */
export interface Delivery {
  readonly partition: PartitionState;
  readonly message: RawMessage;
  readonly offset: number;
  readonly bytes: number;
}

/**
 * Limits of what one partition may hold in memory before it is paused. Everything it holds counts: records
 * queued, running, and finished behind an unfinished one (until the completed prefix passes them), and under
 * exactly-once the outputs waiting for their transaction.
 */
export interface BufferLimits {
  readonly maxRecords: number;
  readonly maxBytes: number;
}

/** What a record costs beyond its key, value and headers (the message object, the delivery, the tracker entry). */
const RECORD_OVERHEAD_BYTES = 64;

/** The bytes a message counts for against `buffer.maxBytes`: key, value, header names and values, plus overhead. */
export function messageBytes(message: { readonly key: Buffer | null; readonly value: Buffer | null; readonly headers: RawHeaders }): number {
  return (message.value?.length ?? 0) + (message.key?.length ?? 0) + rawHeaderBytes(message.headers) + RECORD_OVERHEAD_BYTES;
}

/** A record one agent is handling: what `/healthz` and the per-partition gauges call unfinished. */
export interface RunningRecord {
  readonly agent: string;
  readonly offset: number;
  /** `Date.now()` when its first attempt started (on a retry stage: when it became due). */
  readonly since: number;
}

/**
 * A running record as its partition links it into its list of running ones: the links live on the record,
 * so starting and stopping a record allocates nothing (a Set's table grows and shrinks with thousands of
 * records in flight).
 */
export interface RunningEntry extends RunningRecord {
  partitionPrev: RunningEntry | undefined;
  partitionNext: RunningEntry | undefined;
}

/**
 * The runtime's state for one assigned partition in one assignment: which offsets are done (commit
 * tracking), how much it holds (backpressure), which records are running and since when, and the abort
 * signal that fires when it is revoked. A partition revoked and later assigned again gets a fresh state:
 * nothing of the old one is committed.
 */
export class PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly tracker = new CommitTracker();
  readonly #controller = new AbortController();
  readonly #agents: number;
  readonly #remaining = new Map<number, number>();
  /** Outputs of completed records waiting for their transaction (exactly-once only), in offset order. */
  readonly #outputs = new Map<number, { messages: OutgoingMessage[]; bytes: number }>();
  /** Every accepted record not yet passed by the completed prefix, in offset order, with what it counts for. */
  readonly #held = new Queue<{ offset: number; bytes: number }>();
  /** Records running now, one entry per agent's run of a delivery (a record of a topic with two agents runs twice). */
  #runningHead: RunningEntry | undefined;
  #runningTail: RunningEntry | undefined;
  /** Deliveries accepted and not started yet (per agent): what `health().buffered` reports. */
  queued = 0;
  /** Records held: accepted and not yet passed by the completed prefix, plus outputs waiting for a transaction. */
  heldRecords = 0;
  /** The bytes of what {@link heldRecords} counts (key, value, headers, overhead). */
  heldBytes = 0;
  paused = false;
  /**
   * Exactly-once only: the partition is not ours to process yet. Its transactional producer is being
   * initialised (which fences the previous owner and ends its open transaction) and its position read
   * from the committed offset; until then the consumer keeps it paused.
   */
  claiming = false;
  /** The partition's tables are being restored from their changelogs: the consumer keeps it paused. */
  restoring = false;
  /** The partition's state of each table of its topic, once restored. */
  readonly tables = new Map<AnyTable, PartitionStore<unknown, unknown>>();
  highWatermark = 0;
  /** The first offset this state accepted: where a rewind goes when the group has no committed offset. */
  firstOffset: number | undefined;
  /**
   * `Date.now()` of this partition's last commit, or of the moment it last went from nothing uncommitted to
   * something; undefined while everything it accepted is committed (an idle partition is not behind).
   */
  uncommittedSince: number | undefined;

  constructor(topic: string, partition: number, agents: number) {
    this.topic = topic;
    this.partition = partition;
    this.#agents = agents;
  }

  /** Fires when the partition is revoked: in-flight handlers should stop. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get revoked(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Starts tracking a message that every agent of the topic will process. */
  accept(message: RawMessage, offset: number): Delivery {
    this.tracker.track(offset);
    this.firstOffset ??= offset;
    this.uncommittedSince ??= Date.now();
    // One agent per topic is the common case: its offsets need no countdown.
    if (this.#agents > 1) this.#remaining.set(offset, this.#agents);
    const bytes = messageBytes(message);
    this.queued += this.#agents;
    this.heldRecords += 1;
    this.heldBytes += bytes;
    this.#held.push({ offset, bytes });
    return { partition: this, message, offset, bytes };
  }

  isFull(limits: BufferLimits): boolean {
    return this.heldRecords >= limits.maxRecords || this.heldBytes >= limits.maxBytes;
  }

  /** Below half of both limits: room enough to resume fetching without flapping. */
  hasRoom(limits: BufferLimits): boolean {
    return this.heldRecords <= limits.maxRecords / 2 && this.heldBytes <= limits.maxBytes / 2;
  }

  /** A delivery left the queue (it started running, or was dropped). It is still held until it is done. */
  dequeued(): void {
    this.queued -= 1;
  }

  /** One agent started handling a delivery: `record` (its `since` set by the caller) names that run until {@link stopped}. */
  started(record: RunningEntry): void {
    this.stopped(record);
    record.partitionPrev = this.#runningTail;
    record.partitionNext = undefined;
    if (this.#runningTail) this.#runningTail.partitionNext = record;
    else this.#runningHead = record;
    this.#runningTail = record;
  }

  /** The run `record` ended (finished, failed for good, aborted, or waiting to be due on a retry stage). */
  stopped(record: RunningEntry): void {
    const { partitionPrev: prev, partitionNext: next } = record;
    // Not in the list (stopped already, or never started): nothing to unlink.
    if (prev === undefined && this.#runningHead !== record) return;
    if (prev) prev.partitionNext = next;
    else this.#runningHead = next;
    if (next) next.partitionPrev = prev;
    else this.#runningTail = prev;
    record.partitionPrev = undefined;
    record.partitionNext = undefined;
  }

  /** The record running longest on this partition, if any. */
  oldestRunning(): RunningRecord | undefined {
    let oldest: RunningRecord | undefined;
    for (let running = this.#runningHead; running; running = running.partitionNext) if (!oldest || running.since < oldest.since) oldest = running;
    return oldest;
  }

  /**
   * One agent finished a delivery (processed or dead-lettered). Returns true when every agent is done
   * with that offset, i.e. the commit tracker may have moved (and what the partition holds shrunk).
   */
  done(delivery: Delivery, outputs: readonly OutgoingMessage[]): boolean {
    if (this.revoked) return false;
    const left = this.#agents > 1 ? this.#remaining.get(delivery.offset) : 1;
    if (left === undefined) throw new StreamError('STATE_INVALID', `offset ${delivery.offset} of ${this.topic}/${this.partition} finished twice`);
    if (outputs.length > 0) {
      const bytes = outputs.reduce((sum, m) => sum + messageBytes(m), 0);
      const existing = this.#outputs.get(delivery.offset);
      if (existing) {
        existing.messages.push(...outputs);
        existing.bytes += bytes;
      } else {
        this.#outputs.set(delivery.offset, { messages: [...outputs], bytes });
      }
      this.heldRecords += outputs.length;
      this.heldBytes += bytes;
    }
    if (left > 1) {
      this.#remaining.set(delivery.offset, left - 1);
      return false;
    }
    this.#remaining.delete(delivery.offset);
    this.tracker.complete(delivery.offset);
    this.#releasePrefix();
    return true;
  }

  /** Stops counting the records the completed prefix passed: they are done and only their offset is kept. */
  #releasePrefix(): void {
    const end = this.tracker.completedUpTo;
    if (end === undefined) return;
    for (;;) {
      const head = this.#held.peek();
      if (!head || head.offset >= end) return;
      this.#held.shift();
      this.heldRecords -= 1;
      this.heldBytes -= head.bytes;
    }
  }

  /** The outputs of every completed offset below `before`, in offset order (kept until {@link dropOutputs}). */
  outputsBefore(before: number): OutgoingMessage[] {
    const offsets = [...this.#outputs.keys()].filter((o) => o < before).sort((a, b) => a - b);
    return offsets.flatMap((offset) => this.#outputs.get(offset)!.messages);
  }

  /** Forgets the outputs below `before` once their transaction committed. */
  dropOutputs(before: number): void {
    for (const [offset, held] of [...this.#outputs]) {
      if (offset >= before) continue;
      this.#outputs.delete(offset);
      this.heldRecords -= held.messages.length;
      this.heldBytes -= held.bytes;
    }
  }

  /** `offset` was committed: the partition is up to date when nothing it accepted is left uncommitted. */
  committedAt(offset: number): void {
    this.tracker.markCommitted(offset);
    this.uncommittedSince = this.tracker.pending === 0 && this.tracker.peekCommit() === undefined ? undefined : Date.now();
  }

  /** Milliseconds since the last commit while something is uncommitted; 0 when the partition is up to date. */
  commitAgeMs(now = Date.now()): number {
    return this.uncommittedSince === undefined ? 0 : now - this.uncommittedSince;
  }

  revoke(reason: string): void {
    if (!this.revoked) this.#controller.abort(new StreamError('ABORTED', `${this.topic}/${this.partition}: ${reason}`));
  }
}
