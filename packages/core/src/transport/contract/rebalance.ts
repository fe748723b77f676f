import { describe, expect } from 'vitest';
import type { Assignment, PartitionOffset, TopicPartition } from '../transport.js';
import { contractTest, record, tp, type Member } from './contract-context.js';
import type { ConsumerProbe } from './consumer-probe.js';
import type { TransportFactory } from './transport-under-test.js';

const byPartition = (a: TopicPartition, b: TopicPartition): number => a.partition - b.partition;

/** Generations a member heard, in order. */
const generations = (probe: ConsumerProbe): number[] => probe.assignments.map((a) => a.generation);

/** The member's latest assignment once it is newer than `after`. */
const newerThan = (probe: ConsumerProbe, after: Assignment): boolean => probe.assignment.generation > after.generation;

/**
 * Eager rebalances: every member gives up everything, hears onRevoking first (its last chance to commit
 * for the generation) and then its share of the next generation. The runtime revokes and re-creates its
 * partition state from these events, so their order and the split are the contract. Incremental ones
 * (KIP-848, `incrementalRebalance`): only a member that loses partitions hears onRevoking first.
 */
export function describeRebalances(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('rebalances', () => {
    test('two members split the partitions, commits of the current generation count, a leaver gives its share back', async (c) => {
      const topic = await c.topic('split', 4);
      const all = [0, 1, 2, 3].map((p) => tp(topic, p));
      await c.send(all.map((p) => record(topic, `first-${p.partition}`, { partition: p.partition })));
      const groupId = c.name('split-group');
      const admin = await c.admin();

      const a = await c.member(groupId, [topic]);
      expect(a.probe.assignment.partitions).toEqual(all);
      const alone = a.probe.assignment;

      const b = await c.member(groupId, [topic]);
      await c.until(() => newerThan(a.probe, alone) && b.probe.assignment.partitions.length > 0, 'both members to have their share');
      const shareA = a.probe.assignment.partitions;
      const shareB = b.probe.assignment.partitions;
      expect(shareA).toHaveLength(2);
      expect(shareB).toHaveLength(2);
      expect([...shareA, ...shareB].sort(byPartition)).toEqual(all);
      // A heard onRevoking before its share of the new generation. (Only "somewhere before": kafkajs also
      // rejoins without telling, e.g. on changed metadata of a new topic; see KafkaConsumer#onRebalancing.)
      const joinEvents = a.probe.events.filter((e) => e.kind !== 'batch');
      const aloneAt = joinEvents.findIndex((e) => e.kind === 'assignment' && e.assignment.generation === alone.generation);
      expect(joinEvents.slice(aloneAt + 1, -1).map((e) => e.kind)).toContain('revoking');

      // A commit of the current generation is accepted; one of a partition the member does not own
      // (any more) must not move that partition's offset (memory rejects it, kafkajs leaves it out).
      const [ownA] = shareA;
      const [ownB] = shareB;
      if (!ownA || !ownB) throw new Error('a share is empty');
      await a.consumer.commit([{ ...ownA, offset: '1' }]);
      await a.consumer.commit([{ ...ownB, offset: '1' }]).catch(() => undefined);
      expect(await admin.committedOffsets(groupId, topic)).toEqual([{ ...ownA, offset: '1' }]);

      // When B leaves, A hears onRevoking and commits there, synchronously, as the runtime does: those
      // commits still belong to the old generation and must be accepted. (Incremental rebalances: A only
      // gains partitions, so it hears the new assignment alone; its revoking commits were tested above.)
      const paired = a.probe.assignment;
      const incremental = c.under.incrementalRebalance === true;
      const revokeCommits: Promise<void>[] = [];
      a.probe.revoking = () => {
        const offsets: PartitionOffset[] = a.probe.assignment.partitions.map((p) => ({ ...p, offset: '1' }));
        revokeCommits.push(a.consumer.commit(offsets));
      };
      await b.consumer.stop();
      await c.until(() => newerThan(a.probe, paired), 'A to be assigned after B left');
      expect(a.probe.assignment.partitions).toEqual(all);
      await Promise.all(revokeCommits);
      expect(revokeCommits.length > 0).toBe(!incremental);
      expect(await admin.committedOffsets(groupId, topic)).toEqual(
        incremental ? [{ ...ownA, offset: '1' }] : shareA.map((p) => ({ ...p, offset: '1' })).sort(byPartition),
      );

      // onRevoking came after the paired generation and before the new one.
      const events = a.probe.events.filter((e) => e.kind !== 'batch');
      const pairedAt = events.findIndex((e) => e.kind === 'assignment' && e.assignment.generation === paired.generation);
      expect(events.slice(pairedAt + 1).map((e) => e.kind)).toEqual(incremental ? ['assignment'] : ['revoking', 'assignment']);

      // Every member's generation only increases.
      for (const member of [a, b] satisfies Member[]) {
        const seen = generations(member.probe);
        expect(seen).toEqual([...seen].sort((x, y) => x - y));
        expect(new Set(seen).size).toBe(seen.length);
      }
      expect(a.probe.crashes).toEqual([]);
      expect(b.probe.crashes).toEqual([]);
    });

    test(
      'commits onRevoking returns still count when they go out late (behind a commit in flight): the rejoin waits for them',
      async (c) => {
        const topic = await c.topic('revoke-late', 2);
        const all = [0, 1].map((p) => tp(topic, p));
        // Offset 1 must exist: a member positioned past the end resets (and commits) the partition's start.
        await c.send(all.map((p) => record(topic, `first-${p.partition}`, { partition: p.partition })));
        const groupId = c.name('revoke-late-group');
        const admin = await c.admin();
        const a = await c.member(groupId, [topic]);
        expect(a.probe.assignment.partitions).toEqual(all);
        // As the runtime's revoking commit does when a periodic commit is in flight: it is written only once
        // that one is answered. Written after A's JoinGroup, the coordinator would hold it until the join
        // completes and then refuse it as of the old generation.
        let late: Promise<void> | undefined;
        a.probe.revoking = () => {
          late ??= new Promise((resolve) => setTimeout(resolve, 300)).then(() => a.consumer.commit(all.map((p) => ({ ...p, offset: '1' }))));
          return late;
        };
        const alone = a.probe.assignment;
        const b = await c.member(groupId, [topic]);
        await c.until(() => newerThan(a.probe, alone) && b.probe.assignment.partitions.length > 0, 'both members to have their share');
        if (!late) throw new Error('A did not hear onRevoking');
        await late;
        expect(await admin.committedOffsets(groupId, topic)).toEqual(all.map((p) => ({ ...p, offset: '1' })));
        expect(a.probe.crashes).toEqual([]);
      },
      'holdsRejoinForRevokingCommits',
    );

    test('a pause survives a rebalance for partitions the member keeps, not for those it lost and got back', async (c) => {
      const topic = await c.topic('pause-rebalance', 4);
      const all = [0, 1, 2, 3].map((p) => tp(topic, p));
      const groupId = c.name('pause-rebalance-group');
      const a = await c.member(groupId, [topic]);
      a.consumer.pause(all);
      const alone = a.probe.assignment;

      const b = await c.member(groupId, [topic]);
      await c.until(() => newerThan(a.probe, alone) && b.probe.assignment.partitions.length > 0, 'both members to have their share');
      const kept = a.probe.assignment.partitions;
      const lost = b.probe.assignment.partitions;
      const paired = a.probe.assignment;
      await b.consumer.stop();
      await c.until(() => newerThan(a.probe, paired), 'A to be assigned after B left');
      expect(a.probe.assignment.partitions).toEqual(all);

      await c.send(all.map((p) => record(topic, `after-${p.partition}`, { partition: p.partition })));
      // The runtime treats a partition it gets back as fresh and unpaused: it must deliver.
      await c.until(() => lost.every((p) => a.probe.of(p).length > 0), 'the partitions A got back to deliver');
      expect(kept.flatMap((p) => a.probe.of(p))).toEqual([]);
      a.consumer.resume(kept);
      await c.until(() => kept.every((p) => a.probe.of(p).length > 0), 'the kept partitions to deliver once resumed');
      expect(a.probe.values().sort()).toEqual(all.map((p) => `after-${p.partition}`));
    });
  });
}
