/**
 * The records of a partition's fetch response that a reader may see: shared by the consumer's fetch loop
 * and `readPartition`, so both drop aborted transactions the same way.
 */
import type { RecordsBatch } from '@platformatic/kafka';
import { platformatic } from './client.js';
import type { RawMessage } from '../transport.js';
import { toRawHeaders } from './conversions.js';

/** An aborted transaction as a fetch response lists it: its producer and its first offset. */
export interface AbortedTransaction {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
}

/** What {@link fetchedRecords} found in one partition's batches. */
export interface FetchedRecords {
  /** The deliverable records from `from` on, in offset order. */
  readonly messages: RawMessage[];
  /**
   * The offset after the last batch of the response (records, transaction markers, and batches of aborted
   * transactions alike): the next fetch position. Undefined when the response held no batch.
   */
  readonly next: bigint | undefined;
}

/**
 * The deliverable records of a partition's batches from `from` on, and the offset after the last batch.
 *
 * Read committed: the Kafka fetch protocol leaves dropping aborted transactions to the client, with the
 * response's aborted transaction list and the abort markers. The client's `fetch` filters too, but keeps an
 * aborted range whose abort marker is not in the same response (a response cut by maxBytes) and remembers
 * one aborted range per producer, so this runs on its result: a transactional batch of a producer is dropped
 * from the aborted transaction's first offset until that producer's abort marker (the broker lists an
 * aborted transaction again in the next response while its marker lies ahead). Control batches (markers)
 * never reach the reader, but do move `next`.
 */
export function fetchedRecords(batches: readonly RecordsBatch[], aborted: readonly AbortedTransaction[], from: bigint, readCommitted: boolean): FetchedRecords {
  const { IS_CONTROL, IS_TRANSACTIONAL } = platformatic();
  const messages: RawMessage[] = [];
  let next: bigint | undefined;
  const pendingAborts = [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const abortedProducers = new Set<bigint>();
  for (const batch of batches) {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    next = last + 1n;
    if (readCommitted) {
      while (pendingAborts.length > 0 && (pendingAborts[0]?.firstOffset ?? 0n) <= last) {
        const first = pendingAborts.shift();
        if (first) abortedProducers.add(first.producerId);
      }
    }
    if (batch.attributes & IS_CONTROL) {
      // An abort marker (control type 0) ends the aborted transaction of its producer.
      const type = batch.records[0]?.key?.readInt16BE(2);
      if (type === 0) abortedProducers.delete(batch.producerId);
      continue;
    }
    if (readCommitted && batch.attributes & IS_TRANSACTIONAL && abortedProducers.has(batch.producerId)) continue;
    for (const record of batch.records) {
      const offset = batch.firstOffset + BigInt(record.offsetDelta);
      if (offset < from) continue;
      messages.push({
        key: record.key,
        value: record.value,
        headers: toRawHeaders(record.headers),
        offset: offset.toString(),
        timestamp: (batch.firstTimestamp + record.timestampDelta).toString(),
      });
    }
  }
  return { messages, next };
}
