import { StreamError } from '../errors.js';

/**
 * Tracks which offsets of one partition are done, so that the committed offset never passes a record that
 * is still in flight, retrying or failed.
 *
 * Invariant: `committable` is one past the last offset of the longest prefix of tracked offsets that are all
 * completed. Offsets are tracked in delivery order and need not be contiguous numbers (transaction markers
 * and compaction leave gaps), so "contiguous" means contiguous in delivery order, never `offset + 1` arithmetic.
 *
 * @example
 * const t = new CommitTracker();
 * t.track(5); t.track(6); t.complete(6); t.takeCommit(); // undefined: 5 is still in flight
 * t.complete(5); t.takeCommit(); // 7
 */
export class CommitTracker {
  #order: number[] = [];
  #head = 0;
  readonly #done = new Set<number>();
  #lastTracked = -1;
  #committable: number | undefined;
  #committed: number | undefined;

  /** Starts tracking an offset. Offsets must arrive in increasing order. */
  track(offset: number): void {
    if (offset <= this.#lastTracked) {
      throw new StreamError('STATE_INVALID', `offset ${offset} tracked after ${this.#lastTracked}`);
    }
    this.#order.push(offset);
    this.#lastTracked = offset;
  }

  /** The highest offset ever tracked, or -1: anything at or below it was already delivered here. */
  get lastTracked(): number {
    return this.#lastTracked;
  }

  /** Marks a tracked offset as done (processed, or dead-lettered). */
  complete(offset: number): void {
    if (offset > this.#lastTracked) throw new StreamError('STATE_INVALID', `offset ${offset} completed but never tracked`);
    if (this.#order[this.#head] === offset) {
      // The oldest pending offset (the common case): the prefix moves without the set.
      this.#committable = offset + 1;
      this.#head += 1;
      if (this.#done.size === 0) {
        this.#compact();
        return;
      }
    } else {
      this.#done.add(offset);
    }
    while (this.#head < this.#order.length) {
      const next = this.#order[this.#head]!;
      if (!this.#done.has(next)) break;
      this.#done.delete(next);
      this.#committable = next + 1;
      this.#head += 1;
    }
    // Drop the consumed prefix now and then so the array stays as small as what is pending.
    this.#compact();
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  /** One past the end of the completed prefix (undefined until the first tracked offset completed). */
  get completedUpTo(): number | undefined {
    return this.#committable;
  }

  /** Offsets tracked and not yet part of the completed prefix (in flight, queued, or done behind a gap). */
  get pending(): number {
    return this.#order.length - this.#head;
  }

  /** The offset to commit (next to read), if the completed prefix moved since the last commit. */
  peekCommit(): number | undefined {
    if (this.#committable === undefined || this.#committable === this.#committed) return undefined;
    return this.#committable;
  }

  /** Like {@link peekCommit}, and records it as committed (call once the commit succeeded, or take and restore). */
  takeCommit(): number | undefined {
    const offset = this.peekCommit();
    if (offset !== undefined) this.#committed = offset;
    return offset;
  }

  /** Records that `offset` was committed (after a successful commit of a peeked value). */
  markCommitted(offset: number): void {
    if (this.#committed === undefined || offset > this.#committed) this.#committed = offset;
  }

  /** The last committed offset seen by this tracker. */
  get committed(): number | undefined {
    return this.#committed;
  }
}
