import { StreamError } from '../errors.js';
import type { RawMessage, Transport } from '../transport/transport.js';

/** What {@link readRange} reads and what it does with each record. */
export interface ReadRangeOptions {
  readonly topic: string;
  readonly partition: number;
  /**
   * The first offset wanted (default the earliest). Below the partition's earliest offset the read rejects
   * (`STATE_INVALID`, `context.outOfRange`): see `ReadPartitionOptions.start`.
   */
  readonly start?: number;
  /** The end offset read before: the read ends when its position reaches it. */
  readonly end: number;
  readonly signal: AbortSignal;
  /** Called for each committed record below `end`, in offset order; must not block. */
  apply(message: RawMessage): void;
  /** Called after each batch with the records of it that were applied (a table's local store keeps them). */
  applied?(messages: readonly RawMessage[]): void;
  /** Called after each batch with the offset of the last record applied (-1 before any). */
  progress?(lastOffset: number): void;
}

/**
 * Reads committed records of one partition from `start` (default the earliest offset) until the read position
 * reaches `end`, outside any consumer group. Shared by a table partition's restore and a global table's
 * load and follow: both must stop at an end offset read beforehand (compaction and transaction markers leave
 * gaps, so never "until a record at end - 1") and ignore what a batch holds past it.
 * `CONFIG_INVALID` when the transport cannot read a partition.
 */
export async function readRange(transport: Transport, what: string, options: ReadRangeOptions): Promise<void> {
  const { topic, partition, end, signal } = options;
  if (!transport.readPartition) {
    throw new StreamError('CONFIG_INVALID', `the ${transport.name} transport cannot read a partition: ${what} cannot be read`);
  }
  const start = options.start ?? 0;
  if (end <= start) return;
  let last = -1;
  await transport.readPartition({
    topic,
    partition,
    end,
    ...(options.start === undefined ? {} : { start }),
    signal,
    onMessages: (messages) => {
      const taken: RawMessage[] = [];
      for (const message of messages) {
        const offset = Number(message.offset);
        if (offset >= end) break;
        if (offset < start) continue;
        options.apply(message);
        taken.push(message);
        last = offset;
      }
      if (taken.length > 0) options.applied?.(taken);
      options.progress?.(last);
    },
  });
}
