/** The runner's side of the table scenarios: a counting table's changelog, written fast and read back. Not measured. */
import { SOURCE_OFFSET_HEADER } from '@stream/core';
import type { DatasetSpec } from './data.js';
import { produceChunks, readTopic, type Produced } from './kafka.js';
import { countEntries } from './tables.js';

/**
 * Writes the counting table's changelog of the data set to `topic` as the runtime would (key bytes, JSON
 * value, the source offset header; the record's `seq` stands for its offset), in large batches. Partitioned
 * by key with murmur2 like the runtime's, so each entry lands in its key's partition.
 */
export function produceCountEntries(topic: string, spec: DatasetSpec): Promise<Produced> {
  // One request at a time: a key's entries must land in order (requests in flight at once were seen to
  // land out of order, as the runtime found for its own changelog writes). ~70 bytes an entry with its
  // header: 8,000 per partition stay below the broker's 1 MB per batch.
  return produceChunks(topic, countEntries(spec), 8_000 * spec.partitions, 1, (chunk) =>
    chunk.map((e) => ({ key: e.key, value: String(e.value), headers: { [SOURCE_OFFSET_HEADER]: String(e.source) } })),
  );
}

/**
 * Reads a counting table's changelog back (read_committed): the last value of each key. Every processed
 * record writes exactly one entry, so it stops after `entries` of them (a key's count only grows, so an
 * entry beyond would leave a partition's last one unread and its key stale: the comparison still fails),
 * or after 5 s without new ones.
 */
export async function readCounts(topic: string, entries: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let read = 0;
  await readTopic(
    topic,
    (m) => {
      read += 1;
      const key = m.key?.toString('utf8') ?? '';
      if (m.value === null) counts.delete(key);
      else counts.set(key, JSON.parse(m.value.toString('utf8')) as number);
    },
    () => read >= entries,
    5_000,
  );
  return counts;
}
