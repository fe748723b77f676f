import { describe, expect } from 'vitest';
import type { RawMessage } from '../transport.js';
import { contractTest, record, records, tp, type ContractContext } from './contract-context.js';
import type { TransportFactory } from './transport-under-test.js';

/** The offsets of partition 0 of `topic` a read from `start` (default the earliest) up to `end` delivers below `end`. */
async function readOffsets(c: ContractContext, topic: string, end: number, start?: number): Promise<number[]> {
  return (await readMessages(c, topic, end, start)).map((m) => Number(m.offset));
}

/** The values (UTF-8) partition 0 of `topic` a read from `start` (default the earliest) up to `end` delivers below `end`. */
async function readValues(c: ContractContext, topic: string, end: number, start?: number): Promise<(string | null)[]> {
  return (await readMessages(c, topic, end, start)).map((m) => m.value?.toString() ?? null);
}

async function readMessages(c: ContractContext, topic: string, end: number, start?: number): Promise<RawMessage[]> {
  const read: RawMessage[] = [];
  await c.under.transport.readPartition!({
    topic,
    partition: 0,
    end,
    ...(start === undefined ? {} : { start }),
    signal: new AbortController().signal,
    onMessages: (messages) => read.push(...messages),
  });
  // A batch may run past `end` (the caller stops there): only what lies below it counts. kafkajs, which
  // seeks to `start` once its throwaway group fetched from the earliest, may deliver a stretch twice.
  const seen = new Set<string>();
  return read.filter((m) => Number(m.offset) < end && !seen.has(m.offset) && seen.add(m.offset));
}

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

    test(
      'a partition read skips aborted transactions and ends at an end offset past a trailing transaction marker',
      async (c) => {
        const topic = await c.topic('read-partition-tx', 2);
        const producer = await c.producer(c.name('read-partition-tx-id'));
        const transaction = async (partition: number, values: readonly string[], outcome: 'commit' | 'abort'): Promise<void> => {
          const tx = await producer.transaction();
          await tx.send(values.map((v) => record(topic, v, { partition })));
          await (outcome === 'commit' ? tx.commit() : tx.abort());
        };
        // A producer's next transaction starts once the markers of its previous one are written: after one on
        // partition 1, partition 0's end offset lies past the marker of its last transaction (Kafka; the memory
        // transport has no markers).
        const endOf0 = async (): Promise<number> => {
          const admin = await c.admin();
          return Number((await admin.endOffsets(topic)).find((o) => o.partition === 0)?.offset ?? '0');
        };
        await c.send(records(topic, 0, 'plain', 2));
        await transaction(0, ['c-0', 'c-1'], 'commit');
        await transaction(0, ['x-0', 'x-1'], 'abort');
        await transaction(0, ['c-2'], 'commit');
        await transaction(1, ['other-0'], 'commit');
        const committed = ['plain-0', 'plain-1', 'c-0', 'c-1', 'c-2'];
        // Kafka: 2 plain records, 2 + marker, 2 + marker, 1 + marker.
        const afterCommit = await endOf0();
        expect(await readValues(c, topic, afterCommit)).toEqual(committed);

        // Ending on an aborted transaction: its records and its abort marker are read past, nothing delivered.
        await transaction(0, ['x-2', 'x-3'], 'abort');
        await transaction(1, ['other-1'], 'commit');
        const afterAbort = await endOf0();
        expect(afterAbort).toBeGreaterThanOrEqual(afterCommit);
        expect(await readValues(c, topic, afterAbort)).toEqual(committed);
        // From a start between the transactions, to the end.
        const offsets = await readOffsets(c, topic, afterAbort);
        expect(await readValues(c, topic, afterAbort, offsets[2])).toEqual(committed.slice(2));
      },
      'readPartition',
    );

    test(
      'a partition read rejects with the signal reason once aborted, before it starts and between batches',
      async (c) => {
        const topic = await c.topic('read-partition-abort', 1);
        await c.send(records(topic, 0, 'a', 3));
        const reason = new Error('the partition was revoked');
        const aborted = new AbortController();
        aborted.abort(reason);
        const seen: number[] = [];
        const read = (signal: AbortSignal, onMessages: (offsets: number[]) => void) =>
          c.under.transport.readPartition!({
            topic,
            partition: 0,
            end: 3,
            signal,
            onMessages: (messages) => onMessages(messages.map((m) => Number(m.offset))),
          });
        await expect(read(aborted.signal, (offsets) => seen.push(...offsets))).rejects.toBe(reason);
        expect(seen).toEqual([]);

        // Aborted by the reader of the first batch: the read stops there, even though the end was reached.
        const controller = new AbortController();
        await expect(
          read(controller.signal, (offsets) => {
            seen.push(...offsets);
            controller.abort(reason);
          }),
        ).rejects.toBe(reason);
        expect(seen.length).toBeGreaterThan(0);
      },
      'readPartition',
    );

    test(
      'a partition read refuses a start below the earliest offset, never starting elsewhere',
      async (c) => {
        const topic = await c.topic('read-partition-range', 1);
        await c.send(records(topic, 0, 'r', 6));
        await c.under.deleteRecordsBefore!(topic, 0, 3);
        // From the earliest offset, which is now 3.
        expect(await readValues(c, topic, 6)).toEqual(['r-3', 'r-4', 'r-5']);
        expect(await readValues(c, topic, 6, 4)).toEqual(['r-4', 'r-5']);
        const refused = await readValues(c, topic, 6, 1).catch((error: unknown) => error);
        expect(refused).toMatchObject({ code: 'STATE_INVALID', context: { outOfRange: true, start: 1, earliest: 3 } });
      },
      ['readPartition', 'deleteRecordsBefore'],
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
