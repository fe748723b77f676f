import type { ConsumerOptions, FetchedBatch, RawMessage, Transport } from '@stream/core';

/**
 * How the CLI's short-lived consumers join: from the beginning, read committed, and with short session and
 * rebalance timeouts so that a verb run by hand joins and leaves its group in seconds.
 */
export function cliConsumerOptions(groupId: string, topic: string): ConsumerOptions {
  return {
    groupId,
    topics: [topic],
    fromBeginning: true,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
    rebalanceTimeoutMs: 10_000,
    readCommitted: true,
    maxBytesPerPartition: 1024 * 1024,
  };
}

/** A message with the partition it came from. */
export interface ReadMessage extends RawMessage {
  readonly partition: number;
}

/**
 * What `onMessage` did with a message: `'done'` (or nothing) lets the read commit past it, `'left'` leaves it
 * for a later read, so that partition's commit stays at it (the messages after it are still read).
 */
export type ReadOutcome = 'done' | 'left';

/**
 * Reads a topic from a consumer group's position (or the beginning) up to the end offsets it had when the
 * read started, then stops. Commits what it read when `commit` is set, so the next read resumes after it;
 * per partition the commit never passes a message that `onMessage` left (see {@link ReadOutcome}).
 */
export async function readToEnd(
  transport: Transport,
  topic: string,
  options: {
    groupId: string;
    commit: boolean;
    onMessage: (message: ReadMessage) => Promise<ReadOutcome | void> | ReadOutcome | void;
    timeoutMs?: number;
  },
): Promise<number> {
  const admin = transport.admin();
  await admin.connect();
  const ends = new Map((await admin.endOffsets(topic)).map((e) => [e.partition, Number(e.offset)]));
  const committed = new Map((await admin.committedOffsets(options.groupId, topic)).map((c) => [c.partition, Number(c.offset)]));
  await admin.disconnect();
  const remaining = new Set([...ends].filter(([p, end]) => end > (committed.get(p) ?? 0)).map(([p]) => p));
  if (remaining.size === 0) return 0;

  const consumer = transport.consumer(cliConsumerOptions(options.groupId, topic));
  let count = 0;
  /** Partitions with a message left in this read: their commit stays at the first one. */
  const left = new Set<number>();
  let failure: Error | undefined;
  const queue: FetchedBatch[] = [];
  let wake: (() => void) | undefined;
  await consumer.start({
    onAssignment: () => undefined,
    onRevoking: () => undefined,
    onBatch: (batch) => {
      queue.push(batch);
      consumer.pause([{ topic: batch.topic, partition: batch.partition }]);
      wake?.();
      return batch.messages.length;
    },
    onCrash: (error) => {
      failure = error;
      wake?.();
    },
  });
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  try {
    while (remaining.size > 0) {
      if (failure) throw failure;
      const batch = queue.shift();
      if (!batch) {
        if (Date.now() > deadline) throw new Error(`reading ${topic} did not reach its end in time`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
        continue;
      }
      const end = ends.get(batch.partition) ?? 0;
      let last = -1;
      let commitUpTo = -1;
      for (const message of batch.messages) {
        if (Number(message.offset) >= end) break;
        const outcome = await options.onMessage({ ...message, partition: batch.partition });
        if (outcome === 'left' && !left.has(batch.partition)) {
          left.add(batch.partition);
          commitUpTo = Number(message.offset);
        }
        count += 1;
        last = Number(message.offset);
        if (!left.has(batch.partition)) commitUpTo = last + 1;
      }
      if (commitUpTo >= 0 && options.commit) await consumer.commit([{ topic, partition: batch.partition, offset: String(commitUpTo) }]);
      if (last + 1 >= end || Number(batch.messages.at(-1)?.offset ?? -1) + 1 >= end) remaining.delete(batch.partition);
      else consumer.resume([{ topic: batch.topic, partition: batch.partition }]);
    }
  } finally {
    await consumer.stop();
  }
  return count;
}
