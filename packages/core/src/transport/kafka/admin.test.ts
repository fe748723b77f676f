import type { Admin } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaAdmin } from './admin.js';
import type { Cluster } from './cluster.js';

/**
 * kafkajs' admin as it answers right after a topic was created on KRaft: the metadata names a leader, and
 * fetchTopicOffsets throws what it throws while its own cached metadata has none yet (admin/index.js
 * destructures the missing first topic of the ListOffsets answer), `failures` times, then answers.
 */
function racingAdmin(failure: Error, failures: number) {
  let calls = 0;
  const admin = {
    listTopics: async () => [],
    createTopics: async () => true,
    fetchTopicMetadata: async ({ topics }: { topics: string[] }) => ({
      topics: topics.map((name) => ({ name, partitions: [{ partitionId: 0, leader: 1 }] })),
    }),
    fetchTopicOffsets: async () => {
      calls += 1;
      if (calls <= failures) throw failure;
      return [{ partition: 0, offset: '0', high: '0', low: '0' }];
    },
  };
  const cluster = { kafka: { admin: () => admin as unknown as Admin } } as unknown as Cluster;
  return { admin: new KafkaAdmin(cluster), calls: () => calls };
}

const noLeaderYet = () => new TypeError("Cannot destructure property 'partitions' of 'low.pop(...)' as it is undefined.");

describe('KafkaAdmin.createTopics', () => {
  it("waits out kafkajs' TypeError of a new topic whose leader its metadata does not know yet", async () => {
    const { admin, calls } = racingAdmin(noLeaderYet(), 3);
    await expect(admin.createTopics([{ name: 'fresh', partitions: 1 }])).resolves.toEqual(['fresh']);
    expect(calls()).toBe(4);
  });

  it('fails at once on any other error, naming the topics', async () => {
    const { admin, calls } = racingAdmin(new TypeError('something else broke'), 1);
    await expect(admin.createTopics([{ name: 'fresh', partitions: 1 }])).rejects.toThrow(/create topics fresh failed: something else broke/);
    expect(calls()).toBe(1);
  });
});
