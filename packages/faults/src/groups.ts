import { Admin } from '@platformatic/kafka';
import { withAdmin } from '@stream/local-stack';
import type { Admin as KafkajsAdmin } from 'kafkajs';

/** How long the placement may take (a freshly started broker's group coordinator can still be loading). */
const PLACEMENT_TIMEOUT_MS = 30_000;

/**
 * Commits, for consumer groups that have never run, the current end of each of their topics (every partition,
 * empty ones at offset 0): the groups start with the records produced from now on. Every fault runs on fresh
 * groups placed this way, so one fault never sees another's records and the topics are never deleted and
 * recreated between faults.
 *
 * The offsets are committed the way an admin client alters a group's offsets (@platformatic/kafka's
 * `alterConsumerGroupOffsets`: an OffsetCommit outside any generation, which the coordinator accepts for an
 * empty group), not by a member joining each group (kafkajs' `admin.setOffsets`, about 5 s per group and
 * topic, a minute per fault). They are then read back with kafkajs: a group whose committed offsets are not
 * exactly the end offsets read before is placed again, and after 30 s the placement fails with what is off.
 */
export async function startGroupsAtEnd(brokers: readonly string[], groups: ReadonlyArray<{ groupId: string; topics: readonly string[] }>): Promise<void> {
  await withAdmin(async (kafkajs) => {
    const ends = new Map<string, { partition: number; offset: string }[]>();
    for (const { topics } of groups) {
      for (const topic of topics) {
        if (!ends.has(topic))
          ends.set(
            topic,
            (await kafkajs.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high })),
          );
      }
    }
    const admin = new Admin({ clientId: 'faults-placement', bootstrapBrokers: [...brokers], retries: 5, retryDelay: 200 });
    try {
      const deadline = Date.now() + PLACEMENT_TIMEOUT_MS;
      let pending = [...groups];
      for (;;) {
        const failures = new Map<string, string>();
        await Promise.all(
          pending.map(async ({ groupId, topics }) => {
            try {
              await admin.alterConsumerGroupOffsets({
                groupId,
                topics: topics.map((name) => ({
                  name,
                  partitionOffsets: ends.get(name)!.map((p) => ({ partition: p.partition, offset: BigInt(p.offset) })),
                })),
              });
            } catch (error) {
              failures.set(groupId, error instanceof Error ? error.message : String(error));
            }
          }),
        );
        const wrong = await misplaced(kafkajs, pending, ends);
        for (const [groupId, what] of wrong) if (!failures.has(groupId)) failures.set(groupId, what);
        pending = pending.filter((g) => failures.has(g.groupId));
        if (pending.length === 0) return;
        if (Date.now() > deadline) {
          throw new Error(
            `could not place ${pending.length} consumer groups at the end of their topics in ${PLACEMENT_TIMEOUT_MS / 1000} s: ${[...failures].map(([g, why]) => `${g}: ${why}`).join('; ')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await admin.close();
    }
  });
}

/** The groups whose committed offsets (read with kafkajs) are not the wanted ones, with what is off. */
async function misplaced(
  admin: KafkajsAdmin,
  groups: ReadonlyArray<{ groupId: string; topics: readonly string[] }>,
  ends: ReadonlyMap<string, readonly { partition: number; offset: string }[]>,
): Promise<Map<string, string>> {
  const wrong = new Map<string, string>();
  await Promise.all(
    groups.map(async ({ groupId, topics }) => {
      try {
        const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
        const off: string[] = [];
        for (const topic of topics) {
          const got = committed.find((t) => t.topic === topic)?.partitions ?? [];
          for (const want of ends.get(topic)!) {
            const offset = got.find((p) => p.partition === want.partition)?.offset ?? '-1';
            if (offset !== want.offset) off.push(`${topic}/${want.partition} ${offset}≠${want.offset}`);
          }
        }
        if (off.length > 0) wrong.set(groupId, `committed ${off.join(', ')}`);
      } catch (error) {
        wrong.set(groupId, `reading its offsets failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );
  return wrong;
}
