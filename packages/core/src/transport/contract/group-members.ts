import { describe, expect } from 'vitest';
import type { GroupDescription, TopicPartition } from '../transport.js';
import { contractTest, tp } from './contract-context.js';
import type { TransportFactory } from './transport-under-test.js';

const byPartition = (a: TopicPartition, b: TopicPartition): number => a.partition - b.partition;

/**
 * What a group tells anyone who asks (DescribeGroups): its members, each one's share of the current
 * generation and the text it published. Table queries find a partition's owner and its address this way.
 */
export function describeGroupMembers(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('group members', () => {
    test(
      'describeGroup shows every member with its memberInfo and its current share, as the members heard it',
      async (c) => {
        const topic = await c.topic('members', 4);
        const all = [0, 1, 2, 3].map((p) => tp(topic, p));
        const groupId = c.name('members-group');
        const admin = await c.admin();
        expect(await admin.describeGroup(groupId)).toEqual({ groupId, state: 'empty', members: [] });

        const a = await c.member(groupId, [topic], { memberInfo: '{"url":"http://a.example:9464"}' });
        const alone = a.probe.assignment;
        // B publishes nothing: it is listed, without memberInfo.
        const b = await c.member(groupId, [topic]);
        await c.until(() => a.probe.assignment.generation > alone.generation && b.probe.assignment.partitions.length > 0, 'both members to have their share');

        // The coordinator may answer for a moment with the rebalance still completing: ask until stable.
        let described: GroupDescription = { groupId, state: 'empty', members: [] };
        await c.until(async () => {
          described = await admin.describeGroup(groupId);
          return described.state === 'stable' && described.members.length === 2 && described.members.every((m) => m.assignment.length > 0);
        }, 'the group to be described stable with both members');
        const byInfo = new Map(described.members.map((m) => [m.memberInfo, m]));
        expect([...byInfo.keys()].sort()).toEqual(['{"url":"http://a.example:9464"}', undefined].sort());
        expect(byInfo.get('{"url":"http://a.example:9464"}')?.assignment).toEqual(a.probe.assignment.partitions);
        expect(byInfo.get(undefined)?.assignment).toEqual(b.probe.assignment.partitions);
        expect(described.members.flatMap((m) => m.assignment).sort(byPartition)).toEqual(all);
        expect(new Set(described.members.map((m) => m.memberId)).size).toBe(2);

        // Once B left, A owns everything, and says so with the same memberInfo.
        const paired = a.probe.assignment;
        await b.consumer.stop();
        await c.until(() => a.probe.assignment.generation > paired.generation, 'A to be assigned after B left');
        await c.until(async () => {
          described = await admin.describeGroup(groupId);
          return described.state === 'stable' && described.members.length === 1;
        }, 'the group to be described with A alone');
        expect(described.members.map((m) => ({ memberInfo: m.memberInfo, assignment: m.assignment }))).toEqual([
          { memberInfo: '{"url":"http://a.example:9464"}', assignment: all },
        ]);
        expect(a.probe.crashes).toEqual([]);
      },
      'publishesMemberInfo',
    );

    test('a memberInfo over 1 KiB is refused when the consumer is created', async (c) => {
      const topic = await c.topic('members-long', 1);
      expect(() => c.under.transport.consumer(c.options(c.name('members-long-group'), [topic], { memberInfo: 'x'.repeat(1025) }))).toThrow(/memberInfo/);
    });
  });
}
