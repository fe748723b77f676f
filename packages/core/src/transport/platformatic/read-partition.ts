/**
 * `readPartition` on @platformatic/kafka: a table's restore, a global table's load and follow. One
 * partition, outside any consumer group, committed records only.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Consumer } from '@platformatic/kafka';
import { platformatic } from './client.js';
import { untilAborted } from '../../abort.js';
import { StreamError, toError } from '../../errors.js';
import type { ReadPartitionOptions } from '../transport.js';
import type { Cluster } from './cluster.js';
import { hasProtocolError, transportError } from './errors.js';
import { fetchedRecords } from './records.js';

/**
 * The most bytes one fetch asks for (the partition's and the response's limit). Large, so that a restore
 * takes few round trips; the read holds one response at a time. The broker still returns a first batch
 * larger than this whole, and caps it by its own `fetch.max.bytes` (50 MiB by default).
 */
export const READ_PARTITION_MAX_BYTES = 16 * 1024 * 1024;

/** How a read waits and how long it keeps trying. */
export interface ReadPartitionSettings {
  /** How long a fetch waits for data at the broker (the transport's `fetchMaxWaitMs`). */
  readonly fetchMaxWaitMs: number;
  /** Failed rounds in a row (no leader, broker gone, a retriable error) before the read rejects. */
  readonly maxFailures: number;
  /** The most bytes one fetch asks for; default {@link READ_PARTITION_MAX_BYTES}. */
  readonly maxBytes?: number;
}

/**
 * Reads one partition as {@link ReadPartitionOptions} says, on a client of its own that joins no group (its
 * group id is never used): the earliest offset from ListOffsets (a `start` below it is refused with
 * `STATE_INVALID`, `context.outOfRange`), then fetches from the partition leader at a position kept here,
 * read committed, one request at a time. The position is the offset after the last batch a response held,
 * transaction markers and batches of aborted transactions included, so the read ends at `end` across them.
 *
 * Retries (with backoff, `maxFailures` rounds in a row) a missing leader, a leader change and any failed
 * request; OFFSET_OUT_OF_RANGE re-reads the earliest offset: a position below it (retention deleted what was
 * to be read next) rejects as out of range, unless nothing was delivered yet and no `start` was given (the
 * read then starts at the new earliest). Rejects with the signal's reason once it aborts, without waiting for
 * a request in flight. An error thrown by `onMessages` rejects the read as it is.
 */
export async function readPlatformaticPartition(cluster: Cluster, settings: ReadPartitionSettings, options: ReadPartitionOptions): Promise<void> {
  const { topic, partition, end, signal } = options;
  signal.throwIfAborted();
  const what = `reading ${topic}/${partition} up to ${end}`;
  let consumer: Consumer;
  try {
    consumer = new (platformatic().Consumer)({ ...cluster.options, groupId: `${topic}.read.${randomUUID()}`, autocommit: false });
  } catch (error) {
    throw new StreamError('CONFIG_INVALID', `${what}: ${toError(error).message}`, { cause: error, context: { topic, partition } });
  }
  const until = <T>(promise: Promise<T>): Promise<T> => untilAborted(promise, signal);
  const maxBytes = settings.maxBytes ?? READ_PARTITION_MAX_BYTES;
  const target = BigInt(end);
  /** The next offset to fetch; undefined until the earliest offset is known (no `start`). */
  let position: bigint | undefined = options.start === undefined ? undefined : BigInt(options.start);
  /** Whether `position` was checked against the partition's earliest offset since the last out-of-range answer. */
  let checked = false;
  let delivered = false;
  let failures = 0;
  try {
    // The client resolves topic ids (Fetch v13+) for the topics it tracks.
    consumer.topics.trackAll(topic);
    for (;;) {
      signal.throwIfAborted();
      let records: ReturnType<typeof fetchedRecords>;
      try {
        if (!checked) {
          const listed = await until(
            consumer.listOffsets({
              topics: [topic],
              partitions: { [topic]: [partition] },
              timestamp: platformatic().ListOffsetTimestamps.EARLIEST,
              isolationLevel: platformatic().FetchIsolationLevels.READ_COMMITTED,
            }),
          );
          const earliest = listed.get(topic)?.[partition] ?? 0n;
          if (position === undefined) position = earliest;
          else if (position < earliest) {
            const at = delivered || options.start === undefined ? `the next offset to read, ${position},` : `start offset ${position}`;
            throw new StreamError('STATE_INVALID', `${topic}/${partition}: ${at} is below the earliest offset ${earliest}`, {
              context: {
                topic,
                partition,
                ...(options.start === undefined ? {} : { start: options.start }),
                position: Number(position),
                earliest: Number(earliest),
                outOfRange: true,
              },
            });
          }
          checked = true;
        }
        if (position === undefined || position >= target) return;
        const metadata = await until(consumer.metadata({ topics: [topic] }));
        const described = metadata.topics.get(topic);
        const leader = described?.partitions[partition]?.leader;
        if (!described || leader === undefined || leader < 0) {
          throw new Error(`${topic}/${partition} has no leader`);
        }
        const from = position;
        const response = await until(
          consumer.fetch({
            node: leader,
            topics: [
              {
                topicId: described.id,
                partitions: [{ partition, fetchOffset: from, partitionMaxBytes: maxBytes, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }],
              },
            ],
            maxWaitTime: settings.fetchMaxWaitMs,
            minBytes: 1,
            maxBytes,
            isolationLevel: platformatic().FetchIsolationLevels.READ_COMMITTED,
          }),
        );
        // Absent from an incremental fetch session's answer: nothing new since the last fetch.
        const answer = response.responses.find((t) => t.topicId === described.id)?.partitions.find((p) => p.partitionIndex === partition);
        records = fetchedRecords(answer?.records ?? [], answer?.abortedTransactions ?? [], from, true);
        failures = 0;
      } catch (error) {
        if (signal.aborted) throw toError(signal.reason);
        if (error instanceof StreamError && error.context.outOfRange === true) throw error;
        if (hasProtocolError(error, 'OFFSET_OUT_OF_RANGE')) {
          // Below the earliest offset (retention), or past the log end: the earliest offset tells which.
          checked = false;
          if (!delivered && options.start === undefined) position = undefined;
        }
        failures += 1;
        if (failures > settings.maxFailures) {
          throw transportError(`${what} failed ${failures} times in a row (at offset ${String(position)})`, error, { topic, partition, end });
        }
        await until(consumer.metadata({ topics: [topic], forceUpdate: true })).catch(() => undefined);
        // Rejects (AbortError) once the signal aborts: rethrown below as the signal's reason.
        await delay(Math.min(100 * 2 ** failures, 2000), undefined, { signal });
        continue;
      }
      // Outside the retries: the reader's own failure is not the broker's.
      if (records.messages.length > 0) {
        delivered = true;
        options.onMessages(records.messages);
      }
      if (records.next !== undefined && records.next > (position ?? 0n)) position = records.next;
    }
  } catch (error) {
    if (signal.aborted) throw toError(signal.reason);
    throw error;
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}
