/**
 * What the hand-written kafkajs baselines share, so that they differ only in their work: the client, the
 * consumer settings (kafkajs's default 1 MiB per partition, which suits its batch-at-a-time loop; our runtime
 * fetches 128 KiB by default, see its `DEFAULT_MAX_BYTES_PER_PARTITION`; 100 ms max wait, read_committed),
 * the eachBatch loop's bookkeeping, and the transactional commit of a batch's outputs with its offset.
 */
import { Kafka, logLevel, type Batch, type Consumer, type EachBatchPayload, type Message, type Producer } from 'kafkajs';
import type { ConsumerConfig } from '../protocol.js';
import { count, type Recorder } from './harness.js';

export function baselineKafka(config: ConsumerConfig): Kafka {
  return new Kafka({ clientId: 'bench-kafkajs', brokers: [...config.brokers], logLevel: logLevel.ERROR });
}

export function baselineConsumer(kafka: Kafka, config: ConsumerConfig): Consumer {
  return kafka.consumer({
    groupId: config.groupId,
    readUncommitted: false,
    maxBytesPerPartition: 1024 * 1024,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
  });
}

/** A transactional producer (exactly-once baselines): one transaction at a time. */
export function baselineTransactionalProducer(kafka: Kafka, config: ConsumerConfig): Producer {
  return kafka.producer({ transactionalId: `${config.groupId}-tx`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
}

/**
 * Subscribes to the input from the beginning and runs `handle` on every live fetched batch, counted as
 * fetched. `auto`: kafkajs commits resolved offsets (at-least-once), partitions as concurrent as the
 * scenario says. `transaction`: the handler commits each batch in a transaction, one partition at a time,
 * and empty batches (transaction markers only) are skipped. After `handle`, the batch's last offset is
 * resolved (and, `auto`, committed if due) and the group heartbeated, the same tail for every baseline.
 */
export async function runBatches(
  consumer: Consumer,
  config: ConsumerConfig,
  recorder: Recorder,
  commits: 'auto' | 'transaction',
  handle: (payload: EachBatchPayload) => Promise<void>,
): Promise<void> {
  await consumer.connect();
  await consumer.subscribe({ topics: [config.input], fromBeginning: true });
  await consumer.run({
    autoCommit: commits === 'auto',
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: commits === 'auto' ? config.partitionsConsumedConcurrently : 1,
    eachBatch: async (payload) => {
      if (!payload.isRunning() || payload.isStale()) return;
      if (commits === 'transaction' && payload.batch.messages.length === 0) return;
      recorder.begin();
      count(recorder, 'batchesFetched');
      await handle(payload);
      payload.resolveOffset(payload.batch.lastOffset());
      if (commits === 'auto') await payload.commitOffsetsIfNecessary();
      await payload.heartbeat();
    },
  });
}

/** Sends a batch's outputs and commits its offset in one transaction; aborts it on failure. */
export async function commitInTransaction(producer: Producer, groupId: string, batch: Batch, output: string, messages: Message[]): Promise<void> {
  const transaction = await producer.transaction();
  try {
    await transaction.send({ topic: output, messages });
    await transaction.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(BigInt(batch.lastOffset()) + 1n) }] }],
    });
    await transaction.commit();
  } catch (error) {
    await transaction.abort().catch(() => undefined);
    throw error;
  }
}

/** The batch's non-empty values, each JSON-decoded and checked against `schema` (throws on the first bad one). */
export function parseValues<T>(batch: Batch, schema: { parse(value: unknown): T }): T[] {
  return batch.messages.filter((m) => m.value).map((m) => schema.parse(JSON.parse(m.value!.toString('utf8'))));
}
