import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';
import { localServers } from './servers.js';

/** A kafkajs client for the local broker, quiet unless something is wrong. */
export function testKafka(config: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: 'stream-local-stack',
    brokers: [...localServers().kafkaBrokers],
    logLevel: logLevel.ERROR,
    retry: { retries: 5, initialRetryTime: 100 },
    ...config,
  });
}

/** Runs `fn` with a connected admin client and always disconnects it. */
export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>, kafka: Kafka = testKafka()): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates topics and returns their names once every partition answers offset requests. kafkajs' own
 * `waitForLeaders` gives up when a KRaft broker briefly answers UNKNOWN_TOPIC_OR_PARTITION or
 * NOT_LEADER_FOR_PARTITION for a topic it just created, so readiness is checked here instead.
 */
export async function createTopics(topics: ReadonlyArray<{ name: string; partitions?: number }>): Promise<string[]> {
  await withAdmin(async (admin) => {
    try {
      await admin.createTopics({
        waitForLeaders: false,
        topics: topics.map((t) => ({ topic: t.name, numPartitions: t.partitions ?? 1, replicationFactor: 1 })),
      });
    } catch (error) {
      const existing = new Set(await admin.listTopics());
      if (topics.some((t) => !existing.has(t.name))) throw error;
    }
    const deadline = Date.now() + 15_000;
    for (const topic of topics) {
      for (;;) {
        try {
          const offsets = await admin.fetchTopicOffsets(topic.name);
          if (offsets.length === (topic.partitions ?? 1)) break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
        }
        if (Date.now() > deadline) throw new Error(`topic ${topic.name} has no leaders after 15 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
  return topics.map((t) => t.name);
}

/** Deletes topics, ignoring ones that are already gone. */
export async function deleteTopics(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await withAdmin(async (admin) => {
    const existing = new Set(await admin.listTopics());
    const present = names.filter((n) => existing.has(n));
    if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: 10_000 });
  });
}

/**
 * Deletes a partition's records below `offset` (DeleteRecords): its earliest offset becomes `offset`, as if
 * retention had removed them. For tests of reads that must refuse a start below the earliest offset.
 */
export async function deleteRecordsBefore(topic: string, partition: number, offset: number): Promise<void> {
  await withAdmin(async (admin) => {
    await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs needs the leaders known
    await admin.deleteTopicRecords({ topic, partitions: [{ partition, offset: String(offset) }] });
  });
}
