/**
 * This member's own record of its consumer group: which partitions it was assigned, in which generation,
 * and which of them the runtime paused. The kafkajs consumer keeps it because kafkajs does not expose or
 * keep what the runtime needs:
 *
 * - The generation: kafkajs' GROUP_JOIN event does not carry the group's generationId (consumerGroup.js
 *   emits `{ groupId, memberId, leaderId, isLeader, memberAssignment, groupProtocol, duration }`) and the
 *   ConsumerGroup object is private, so `Assignment.generation` is this member's own join counter: it
 *   increases with every assignment (also across kafkajs restarts) but is not Kafka's generationId and is
 *   not comparable between members.
 * - Pause state: kafkajs keeps a paused partition paused across rebalances (SubscriptionState.assign does
 *   not touch it), but forgets all pauses when it restarts after a crash (a new ConsumerGroup). The
 *   runtime treats a newly assigned partition as fresh (unpaused), so on every assignment we resume
 *   partitions we lost and re-apply pauses of those we kept.
 */
import { byTopicPartition, tpKey } from '../shared.js';
import type { Assignment, TopicPartition } from '../transport.js';

/** A new assignment, and how kafkajs' pause state has to follow it. */
export interface GroupJoin {
  readonly assignment: Assignment;
  /** Paused partitions this member lost: resume them in kafkajs (no longer paused here). */
  readonly lost: readonly TopicPartition[];
  /** Paused partitions this member kept: pause them in kafkajs again (it may have forgotten). */
  readonly kept: readonly TopicPartition[];
}

/** Generation counter, assigned partitions and the runtime's pauses of one kafkajs group member. */
export class GroupMembership {
  #generation = 0;
  #memberId: string | undefined;
  readonly #assigned = new Set<string>();
  /** Partitions the runtime paused: the truth that kafkajs' own pause state is re-synchronised with. */
  readonly #paused = new Map<string, TopicPartition>();

  /**
   * Takes the assignment of a GROUP_JOIN: a new generation; pauses of lost partitions are dropped. A member
   * id other than the previous join's means kafkajs joined anew (after UNKNOWN_MEMBER_ID, which it answers
   * with a rejoin but no REBALANCING, or after a restart): the assignment says `rejoined`.
   */
  join(memberAssignment: Readonly<Record<string, number[]>>, memberId: string): GroupJoin {
    const rejoined = this.#memberId !== undefined && this.#memberId !== memberId;
    this.#memberId = memberId;
    const partitions: TopicPartition[] = Object.entries(memberAssignment)
      .flatMap(([topic, list]) => list.map((partition) => ({ topic, partition })))
      .sort(byTopicPartition);
    this.#generation += 1;
    this.#assigned.clear();
    for (const tp of partitions) this.#assigned.add(tpKey(tp.topic, tp.partition));
    const lost: TopicPartition[] = [];
    const kept: TopicPartition[] = [];
    for (const [key, tp] of this.#paused) {
      if (this.#assigned.has(key)) {
        kept.push(tp);
      } else {
        lost.push(tp);
        this.#paused.delete(key);
      }
    }
    return { assignment: { generation: this.#generation, partitions, ...(rejoined ? { rejoined } : {}) }, lost, kept };
  }

  /** Whether the partition is assigned to this member in its current generation. */
  owns(topic: string, partition: number): boolean {
    return this.#assigned.has(tpKey(topic, partition));
  }

  isPaused(topic: string, partition: number): boolean {
    return this.#paused.has(tpKey(topic, partition));
  }

  pause(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.#paused.set(tpKey(tp.topic, tp.partition), { topic: tp.topic, partition: tp.partition });
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.#paused.delete(tpKey(tp.topic, tp.partition));
  }
}
