import { testKafka, withAdmin } from '@stream/testkit';
import type { Kafka } from 'kafkajs';

type Ends = ReadonlyMap<string, readonly { partition: number; offset: string }[]>;

/**
 * Commits, for a consumer group that has never run, the current end of each topic: the group starts with
 * the records produced from now on. Every fault runs on fresh groups placed this way, so one fault never
 * sees another's records and the topics are never deleted and recreated between faults.
 *
 * kafkajs' admin.setOffsets does this one topic at a time, each through a consumer that joins the group
 * and waits for its first (empty) fetch: about 5 s per group and topic, 50 s per fault. Here each group
 * joins once, with all its topics, and the groups join at the same time.
 */
export async function startGroupsAtEnd(groups: ReadonlyArray<{ groupId: string; topics: readonly string[] }>): Promise<void> {
  const kafka = testKafka();
  await withAdmin(async (admin) => {
    const ends = new Map<string, { partition: number; offset: string }[]>();
    for (const topic of new Set(groups.flatMap((g) => g.topics))) {
      ends.set(topic, (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high })));
    }
    await Promise.all(groups.map(({ groupId, topics }) => commitAtEnd(kafka, groupId, topics, ends)));
    // kafkajs drops a commit silently when its consumer is not running: check what the broker holds.
    for (const { groupId, topics } of groups) {
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId, topics: [...topics] })) {
        for (const p of partitions) {
          const end = ends.get(topic)!.find((e) => e.partition === p.partition)!.offset;
          // An empty partition stays without a commit (kafkajs takes 0 for already committed, having
          // resolved the partition's start to 0): from the earliest offset is from its end then.
          if (p.offset !== end && !(end === '0' && p.offset === '-1')) throw new Error(`group ${groupId}: ${topic}/${p.partition} committed at ${p.offset}, not at its end ${end}`);
        }
      }
    }
  }, kafka);
}

async function commitAtEnd(kafka: Kafka, groupId: string, topics: readonly string[], ends: Ends): Promise<void> {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 1000 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: false });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    // Nothing is processed or resolved, and autoCommit is off: the only commit is the one below.
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
    await joined;
    await consumer.commitOffsets(topics.flatMap((topic) => ends.get(topic)!.map((p) => ({ topic, partition: p.partition, offset: p.offset }))));
  } finally {
    await consumer.disconnect();
  }
}
