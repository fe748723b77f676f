import { describe, expect } from 'vitest';
import { contractTest, record, records, tp } from './contract-context.js';
import type { TransportFactory } from './transport-under-test.js';

/**
 * Offsets and commits: what the runtime's commit tracker and its restart story rely on. A commit names
 * the next offset to read; admin reads back exactly what was committed; a new member of the group starts
 * there; `fromBeginning` only matters for a group without commits.
 */
export function describeOffsets(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('offsets and commits', () => {
    test('reports log end offsets per partition, and each batch carries its partition high watermark', async (c) => {
      const topic = await c.topic('ends', 2);
      const admin = await c.admin();
      expect(await admin.endOffsets(topic)).toEqual([
        { topic, partition: 0, offset: '0' },
        { topic, partition: 1, offset: '0' },
      ]);
      await c.send([...records(topic, 0, 'a', 3), ...records(topic, 1, 'b', 1)]);
      expect(await admin.endOffsets(topic)).toEqual([
        { topic, partition: 0, offset: '3' },
        { topic, partition: 1, offset: '1' },
      ]);

      const { probe } = await c.member(c.name('ends-group'), [topic]);
      await c.until(() => probe.accepted.length >= 4, 'all four records');
      expect(probe.offsets(tp(topic, 0))).toEqual([0, 1, 2]);
      expect(probe.offsets(tp(topic, 1))).toEqual([0]);
      // Everything was produced before the consumer started, so every batch saw the final log end.
      for (const batch of probe.batches()) expect(batch.highWatermark).toBe(batch.partition === 0 ? '3' : '1');
    });

    test(
      'reads one partition outside any group, from its earliest offset or from a given one, up to an end offset',
      async (c) => {
        const topic = await c.topic('read-partition', 2);
        await c.send([...records(topic, 0, 'a', 6), ...records(topic, 1, 'b', 2)]);
        const read = async (start: number | undefined, end: number): Promise<number[]> => {
          const offsets: number[] = [];
          await c.under.transport.readPartition!({
            topic,
            partition: 0,
            end,
            ...(start === undefined ? {} : { start }),
            signal: new AbortController().signal,
            onMessages: (messages) => offsets.push(...messages.map((m) => Number(m.offset))),
          });
          // A batch may run past `end` (the caller stops there): only what is below it counts.
          return offsets.filter((o) => o < end);
        };
        expect(await read(undefined, 6)).toEqual([0, 1, 2, 3, 4, 5]);
        // A global table following its topic reads on from where its previous read ended.
        expect(await read(4, 6)).toEqual([4, 5]);
        expect(await read(2, 4)).toEqual([2, 3]);
      },
      'readPartition',
    );

    test('reads back committed offsets through admin, a later commit of a partition replacing the earlier one', async (c) => {
      const topic = await c.topic('commits', 3);
      await c.send([...records(topic, 0, 'a', 5), ...records(topic, 1, 'b', 2)]);
      const groupId = c.name('commits-group');
      const admin = await c.admin();
      const { consumer } = await c.member(groupId, [topic]);
      // No commit yet: nothing is reported (not offset -1 or 0).
      expect(await admin.committedOffsets(groupId, topic)).toEqual([]);

      await consumer.commit([
        { topic, partition: 1, offset: '2' },
        { topic, partition: 0, offset: '3' },
      ]);
      // Sorted by partition; partition 2 has no commit and is left out.
      expect(await admin.committedOffsets(groupId, topic)).toEqual([
        { topic, partition: 0, offset: '3' },
        { topic, partition: 1, offset: '2' },
      ]);
      await consumer.commit([{ topic, partition: 0, offset: '5' }]);
      expect(await admin.committedOffsets(groupId, topic)).toEqual([
        { topic, partition: 0, offset: '5' },
        { topic, partition: 1, offset: '2' },
      ]);

      // Once stopped, a commit rejects rather than being dropped silently (the runtime reports failed commits).
      await consumer.stop();
      await expect(consumer.commit([{ topic, partition: 1, offset: '1' }])).rejects.toThrow();
      expect(await admin.committedOffsets(groupId, topic)).toEqual([
        { topic, partition: 0, offset: '5' },
        { topic, partition: 1, offset: '2' },
      ]);
    });

    test('a member that joins after a restart resumes at the committed offset', async (c) => {
      const topic = await c.topic('resume', 1);
      await c.send(records(topic, 0, 'r', 6));
      const groupId = c.name('resume-group');

      const first = await c.member(groupId, [topic]);
      await c.until(() => first.probe.accepted.length >= 6, 'the first member to read all six');
      await first.consumer.commit([{ topic, partition: 0, offset: '4' }]);
      await first.consumer.stop();

      const second = await c.member(groupId, [topic]);
      await c.until(() => second.probe.accepted.length >= 2, 'the second member to read after the commit');
      // Neither before the committed offset (r-3 was processed) nor a gap after it.
      expect(second.probe.batches()[0]?.messages[0]?.offset).toBe('4');
      expect(second.probe.values()).toEqual(['r-4', 'r-5']);
    });

    test('fromBeginning decides where a group without commits starts; a committed offset overrides it', async (c) => {
      const topic = await c.topic('from-beginning', 1);
      await c.send(records(topic, 0, 'old', 3));

      const early = await c.member(c.name('from-beginning-true'), [topic], { fromBeginning: true });
      await c.until(() => early.probe.accepted.length >= 3, 'a fromBeginning group to read the existing records');
      expect(early.probe.values()).toEqual(['old-0', 'old-1', 'old-2']);

      // A group starting at the log end: which record is its first depends on when the transport resolved
      // "the end" (kafkajs does on its first fetch, after start() resolved). So keep producing until one
      // arrives; what arrives must be a gapless tail of the new records and none of the old ones.
      const late = await c.member(c.name('from-beginning-false'), [topic], { fromBeginning: false });
      const sent: string[] = [];
      let sentAt = 0;
      await c.until(async () => {
        if (late.probe.accepted.length > 0) return true;
        if (Date.now() - sentAt < 250) return false;
        sentAt = Date.now();
        const value = `new-${sent.length}`;
        sent.push(value);
        await c.send([record(topic, value, { partition: 0 })]);
        return false;
      }, 'a group starting at the log end to see a record produced after it joined');
      await c.until(() => late.probe.values().at(-1) === sent.at(-1), 'the last new record');
      const seen = late.probe.values();
      expect(seen).toEqual(sent.slice(sent.length - seen.length));

      // With a committed offset, fromBeginning: false still starts there, not at the log end.
      const groupId = c.name('from-beginning-committed');
      const committer = await c.member(groupId, [topic]);
      await committer.consumer.commit([{ topic, partition: 0, offset: '2' }]);
      await committer.consumer.stop();
      const restarted = await c.member(groupId, [topic], { fromBeginning: false });
      await c.until(() => restarted.probe.accepted.length >= 1 + sent.length, 'the restarted member to read from offset 2');
      expect(restarted.probe.values()).toEqual(['old-2', ...sent]);
    });
  });
}
