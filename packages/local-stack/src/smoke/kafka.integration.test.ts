import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer, EachMessagePayload } from 'kafkajs';
import { createTopics, deleteTopics, requireServers, testKafka, uniqueName } from '../index.js';

const kafka = testKafka();
const topics: string[] = [];

async function collect(consumer: Consumer, topic: string, count: number): Promise<EachMessagePayload[]> {
  const seen: EachMessagePayload[] = [];
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`saw ${seen.length} of ${count} messages on ${topic}`)), 30_000);
    consumer
      .run({
        eachMessage: async (payload) => {
          seen.push(payload);
          if (seen.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  return seen;
}

describe('Kafka through kafkajs', () => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics));

  it('round-trips records with keys and headers', async () => {
    const [topic] = await createTopics([{ name: uniqueName('smoke-roundtrip'), partitions: 3 }]);
    topics.push(topic!);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topic!,
      messages: [
        { key: 'a', value: 'first', headers: { trace: 't-1' } },
        { key: 'b', value: 'second' },
      ],
    });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName('smoke-group') });
    await consumer.connect();
    try {
      const seen = await collect(consumer, topic!, 2);
      const byKey = new Map(seen.map((p) => [p.message.key?.toString(), p.message]));
      expect(byKey.get('a')?.value?.toString()).toBe('first');
      expect(byKey.get('a')?.headers?.trace?.toString()).toBe('t-1');
      expect(byKey.get('b')?.value?.toString()).toBe('second');
    } finally {
      await consumer.disconnect();
    }
  });

  it('commits a transactional produce together with consumed offsets (sendOffsets)', async () => {
    const [input, output] = await createTopics([{ name: uniqueName('smoke-tx-in') }, { name: uniqueName('smoke-tx-out') }]);
    topics.push(input!, output!);
    const groupId = uniqueName('smoke-tx-group');

    const plain = kafka.producer();
    await plain.connect();
    await plain.send({ topic: input!, messages: [{ value: 'x' }, { value: 'y' }] });
    await plain.disconnect();

    const producer = kafka.producer({ transactionalId: uniqueName('smoke-tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({ topic: output!, messages: [{ value: 'X' }, { value: 'Y' }] });
    await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input!, partitions: [{ partition: 0, offset: '2' }] }] });
    await tx.commit();

    // An aborted transaction must stay invisible to read-committed consumers.
    const aborted = await producer.transaction();
    await aborted.send({ topic: output!, messages: [{ value: 'never' }] });
    await aborted.abort();
    await producer.disconnect();

    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId, topics: [input!] });
    await admin.disconnect();
    expect(offsets[0]?.partitions[0]?.offset).toBe('2');

    const reader = kafka.consumer({ groupId: uniqueName('smoke-tx-reader'), readUncommitted: false });
    await reader.connect();
    try {
      const seen = await collect(reader, output!, 2);
      expect(seen.map((p) => p.message.value?.toString())).toEqual(['X', 'Y']);
    } finally {
      await reader.disconnect();
    }
  });
});
