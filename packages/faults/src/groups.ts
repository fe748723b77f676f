import { withAdmin } from '@stream/local-stack';

/**
 * Commits, for a consumer group that has never run, the current end of each topic: the group starts with
 * the records produced from now on. Every fault runs on fresh groups placed this way, so one fault never
 * sees another's records and the topics are never deleted and recreated between faults.
 */
export async function startGroupsAtEnd(groups: ReadonlyArray<{ groupId: string; topics: readonly string[] }>): Promise<void> {
  await withAdmin(async (admin) => {
    const ends = new Map<string, { partition: number; offset: string }[]>();
    for (const { topics } of groups) {
      for (const topic of topics) {
        if (!ends.has(topic))
          ends.set(
            topic,
            (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high })),
          );
      }
    }
    for (const { groupId, topics } of groups) {
      for (const topic of topics) await admin.setOffsets({ groupId, topic, partitions: ends.get(topic)! });
    }
  });
}
