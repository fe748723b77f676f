import { randomUUID } from 'node:crypto';
import { StreamError, toError } from '../../errors.js';
import { emptyRawHeaders, type RawMessage, type ReadPartitionOptions } from '../transport.js';
import type { Cluster } from './cluster.js';

/** How often the read position is asked for (see below). */
const POSITION_POLL_MS = 200;

/**
 * Reads one partition outside the app's group, committed records only (a table's restore). kafkajs has
 * no manual assignment, so a consumer of a throwaway group (`<topic>.restore.<uuid>`, deleted afterwards)
 * subscribes from the earliest offset (or seeks to `start`) and pauses every other partition. Its position is the larger of
 * the offset after the last batch delivered and the throwaway group's committed offset, which kafkajs
 * also moves past batches that hold only transaction markers or compacted-away records (those never
 * reach eachBatch): so the read ends when the position reaches `end`, gaps and markers included.
 */
export async function readKafkaPartition(cluster: Cluster, options: ReadPartitionOptions): Promise<void> {
  const { topic, partition, end, signal } = options;
  const start = options.start ?? 0;
  const groupId = `${topic}.restore.${randomUUID()}`;
  const consumer = cluster.kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
  const admin = cluster.kafka.admin();
  let position = start;
  let failure: Error | undefined;
  try {
    await Promise.all([consumer.connect(), admin.connect()]);
    if (options.start !== undefined) {
      // A start below the earliest offset would be reset to the earliest by the consumer: refused instead,
      // since the caller's state was built on what lay below it.
      const low = Number((await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.low ?? '0');
      if (options.start < low) {
        throw new StreamError('STATE_INVALID', `${topic}/${partition}: start offset ${options.start} is below the earliest offset ${low}`, {
          context: { topic, partition, start: options.start, earliest: low, outOfRange: true },
        });
      }
    }
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommitInterval: POSITION_POLL_MS,
      eachBatch: async ({ batch }) => {
        if (batch.partition !== partition) {
          consumer.pause([{ topic, partitions: [batch.partition] }]);
          return;
        }
        try {
          // Records below `start` come from a fetch from the earliest offset before the seek took effect.
          const messages: RawMessage[] = batch.messages
            .filter((m) => Number(m.offset) >= start)
            .map((m) => {
              const headers = emptyRawHeaders();
              for (const [name, value] of Object.entries(m.headers ?? {})) {
                const v = Array.isArray(value) ? value[value.length - 1] : value;
                headers[name] = v === undefined || v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(String(v));
              }
              return { key: m.key, value: m.value, headers, offset: m.offset, timestamp: m.timestamp };
            });
          if (messages.length > 0) options.onMessages(messages);
          position = Math.max(position, Number(batch.lastOffset()) + 1);
        } catch (error) {
          failure ??= toError(error);
        }
      },
    });
    // kafkajs seeks only once running; the seek applies to the partition's next fetch.
    if (options.start !== undefined) consumer.seek({ topic, partition, offset: String(options.start) });
    while (position < end) {
      if (failure) throw failure;
      signal.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, POSITION_POLL_MS));
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const at = committed[0]?.partitions.find((p) => p.partition === partition)?.offset;
      if (at !== undefined && Number(at) > position) position = Number(at);
    }
    if (failure) throw failure;
    // Aborted while the last batch was delivered: the caller has given the read up.
    signal.throwIfAborted();
  } catch (error) {
    if (signal.aborted) throw signal.reason as Error;
    if (error instanceof StreamError && error.context.outOfRange === true) throw error;
    throw new StreamError('TRANSPORT_FAILED', `reading ${topic}/${partition} up to ${end} failed: ${toError(error).message}`, {
      cause: error,
      context: { topic, partition, end },
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
