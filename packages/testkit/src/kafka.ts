import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';
import { localServers } from './servers.js';

/** A kafkajs client for the local broker, quiet unless something is wrong. */
export function testKafka(config: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: 'stream-testkit',
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

/** Creates topics (waiting until their leaders are elected) and returns their names. */
export async function createTopics(topics: ReadonlyArray<{ name: string; partitions?: number }>): Promise<string[]> {
  await withAdmin(async (admin) => {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((t) => ({ topic: t.name, numPartitions: t.partitions ?? 1, replicationFactor: 1 })),
    });
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
