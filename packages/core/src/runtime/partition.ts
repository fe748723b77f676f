import { StreamError } from '../errors.js';
import type { OutgoingMessage, RawMessage } from '../transport/transport.js';
import { CommitTracker } from './commit-tracker.js';

/** One message on its way through one agent. */
export interface Delivery {
  readonly partition: PartitionState;
  readonly message: RawMessage;
  readonly offset: number;
  readonly bytes: number;
}

/** Limits of what one partition may hold in memory before it is paused. */
export interface BufferLimits {
  readonly maxRecords: number;
  readonly maxBytes: number;
}

/**
 * The runtime's state for one assigned partition in one assignment: which offsets are done (commit
 * tracking), how much is buffered (backpressure), and the abort signal that fires when it is revoked.
 * A partition revoked and later assigned again gets a fresh state: nothing of the old one is committed.
 */
export class PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly tracker = new CommitTracker();
  readonly #controller = new AbortController();
  readonly #agents: number;
  readonly #remaining = new Map<number, number>();
  /** Outputs of completed records waiting for their transaction (exactly-once only), in offset order. */
  readonly #outputs = new Map<number, OutgoingMessage[]>();
  queued = 0;
  queuedBytes = 0;
  paused = false;
  /**
   * Exactly-once only: the partition is not ours to process yet. Its transactional producer is being
   * initialised (which fences the previous owner and ends its open transaction) and its position read
   * from the committed offset; until then the consumer keeps it paused.
   */
  claiming = false;
  highWatermark = 0;
  /** The first offset this state accepted: where a rewind goes when the group has no committed offset. */
  firstOffset: number | undefined;

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
    // One agent per topic is the common case: its offsets need no countdown.
    if (this.#agents > 1) this.#remaining.set(offset, this.#agents);
    const bytes = (message.value?.length ?? 0) + (message.key?.length ?? 0) + 64;
    this.queued += this.#agents;
    this.queuedBytes += bytes * this.#agents;
    return { partition: this, message, offset, bytes };
  }

  isFull(limits: BufferLimits): boolean {
    return this.queued >= limits.maxRecords || this.queuedBytes >= limits.maxBytes;
  }

  /** Below half of both limits: room enough to resume fetching without flapping. */
  hasRoom(limits: BufferLimits): boolean {
    return this.queued <= limits.maxRecords / 2 && this.queuedBytes <= limits.maxBytes / 2;
  }

  /** A delivery left the buffer (it started running, or was dropped). */
  dequeued(delivery: Delivery): void {
    this.queued -= 1;
    this.queuedBytes -= delivery.bytes;
  }

  /**
   * One agent finished a delivery (processed or dead-lettered). Returns true when every agent is done
   * with that offset, i.e. the commit tracker may have moved.
   */
  done(delivery: Delivery, outputs: readonly OutgoingMessage[]): boolean {
    if (this.revoked) return false;
    const left = this.#agents > 1 ? this.#remaining.get(delivery.offset) : 1;
    if (left === undefined) throw new StreamError('STATE_INVALID', `offset ${delivery.offset} of ${this.topic}/${this.partition} finished twice`);
    if (outputs.length > 0) {
      const existing = this.#outputs.get(delivery.offset);
      if (existing) existing.push(...outputs);
      else this.#outputs.set(delivery.offset, [...outputs]);
    }
    if (left > 1) {
      this.#remaining.set(delivery.offset, left - 1);
      return false;
    }
    this.#remaining.delete(delivery.offset);
    this.tracker.complete(delivery.offset);
    return true;
  }

  /** The outputs of every completed offset below `before`, in offset order (kept until {@link dropOutputs}). */
  outputsBefore(before: number): OutgoingMessage[] {
    const offsets = [...this.#outputs.keys()].filter((o) => o < before).sort((a, b) => a - b);
    return offsets.flatMap((offset) => this.#outputs.get(offset)!);
  }

  /** Forgets the outputs below `before` once their transaction committed. */
  dropOutputs(before: number): void {
    for (const offset of [...this.#outputs.keys()]) if (offset < before) this.#outputs.delete(offset);
  }

  revoke(reason: string): void {
    if (!this.revoked) this.#controller.abort(new StreamError('ABORTED', `${this.topic}/${this.partition}: ${reason}`));
  }
}
