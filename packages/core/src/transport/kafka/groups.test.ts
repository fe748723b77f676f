import { describe, expect, it } from 'vitest';
import { GroupMembership } from './groups.js';

describe('kafkajs group membership', () => {
  it('says rejoined when a join comes under a new member id (kafkajs rejoins after UNKNOWN_MEMBER_ID without REBALANCING)', () => {
    const membership = new GroupMembership();
    expect(membership.join({ orders: [0, 1] }, 'member-a').assignment.rejoined).toBeUndefined();
    // A rebalance: the same member id, its partitions kept without a break.
    expect(membership.join({ orders: [1] }, 'member-a').assignment.rejoined).toBeUndefined();
    // Removed from the group (its session expired) and joined again: others may have owned partition 1 meanwhile.
    const again = membership.join({ orders: [1] }, 'member-b').assignment;
    expect(again).toEqual({ generation: 3, partitions: [{ topic: 'orders', partition: 1 }], rejoined: true });
    expect(membership.join({ orders: [1] }, 'member-b').assignment.rejoined).toBeUndefined();
  });
});
