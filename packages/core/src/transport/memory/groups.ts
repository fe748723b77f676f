/**
 * Consumer groups on the memory broker: membership, Kafka's eager rebalance protocol, round-robin
 * assignment, and the committed offsets with their history.
 */
import { StreamError } from '../../errors.js';
import { byTopicPartition, tpKey, tpName } from '../shared.js';
import type { Assignment, GroupDescription, GroupMetadata, PartitionOffset, TopicPartition } from '../transport.js';
import type { FaultHooks } from './faults.js';
import { parseOffset, type TopicLogs } from './log.js';

/** One accepted offset commit, as {@link MemoryBroker.commitHistory} lists it. */
export interface CommitRecord {
  readonly groupId: string;
  /** The group's generation when the commit was accepted. */
  readonly generation: number;
  readonly offsets: readonly PartitionOffset[];
  /** The consumer member that committed, or null for offsets committed by a transaction. */
  readonly memberId: string | null;
  /** The producer's transactional id for offsets committed by a transaction, else null. */
  readonly transactionalId: string | null;
}

/** A consumer as its group sees it. Neither callback may call into the listener synchronously. */
export interface GroupMember {
  readonly id: string;
  readonly topics: readonly string[];
  /** What the member published (`ConsumerOptions.memberInfo`), returned by {@link GroupCoordinator.describe}. */
  readonly info?: string;
  /** The group began rebalancing: the member hears onRevoking, then calls `ack` once its last commits went out. */
  revoke(ack: () => void): void;
  /** The member's share of a new generation. */
  assign(assignment: Assignment): void;
  /** The group removed the member (see GroupCoordinator.expel): it finds out later, as on its next heartbeat. */
  expelled?(): void;
}

/** One group's state on the broker. */
export interface Group {
  generation: number;
  /** In join order, which the round-robin assignment follows. */
  readonly members: GroupMember[];
  /** Ids of the members of the current generation. */
  assigned: Set<string>;
  /** Partition key to the id of the member owning it in the current generation. */
  readonly owners: Map<string, string>;
  /** While a rebalance is in progress: members of the current generation that have not acknowledged it yet. */
  awaiting: Set<string> | undefined;
  /** Members that acknowledged the rebalance in progress: like a member that rejoined, their commits fail until it completes. */
  readonly rejoined: Set<string>;
  /** Tells acknowledgements of one rebalance from those of another. */
  round: number;
  readonly committed: Map<string, PartitionOffset>;
  readonly history: CommitRecord[];
}

/** The broker's group coordinator: every group, its members, rebalances and committed offsets. */
export class GroupCoordinator {
  readonly #groups = new Map<string, Group>();
  readonly #logs: TopicLogs;
  readonly #faults: FaultHooks;
  #nextMemberId = 0;

  constructor(logs: TopicLogs, faults: FaultHooks) {
    this.#logs = logs;
    this.#faults = faults;
  }

  group(groupId: string): Group {
    let group = this.#groups.get(groupId);
    if (!group) {
      group = {
        generation: 0,
        members: [],
        assigned: new Set(),
        owners: new Map(),
        awaiting: undefined,
        rejoined: new Set(),
        round: 0,
        committed: new Map(),
        history: [],
      };
      this.#groups.set(groupId, group);
    }
    return group;
  }

  generation(groupId: string): number {
    return this.#groups.get(groupId)?.generation ?? 0;
  }

  memberId(groupId: string): string {
    this.#nextMemberId += 1;
    return `${groupId}-member-${this.#nextMemberId}`;
  }

  join(groupId: string, member: GroupMember): void {
    const group = this.group(groupId);
    group.members.push(member);
    this.#beginRebalance(group);
  }

  leave(groupId: string, memberId: string): void {
    const group = this.group(groupId);
    const index = group.members.findIndex((m) => m.id === memberId);
    if (index < 0) return;
    group.members.splice(index, 1);
    group.assigned.delete(memberId);
    group.rejoined.delete(memberId);
    if (group.awaiting) {
      group.awaiting.delete(memberId);
      this.#completeRebalance(group);
    } else {
      this.#beginRebalance(group);
    }
  }

  /**
   * Removes a member as an expired session does: the group rebalances without it at once, and the member
   * hears only later (on its next heartbeat, see GroupMember.expelled) that it is out. False when it is
   * not a member.
   */
  expel(groupId: string, memberId: string): boolean {
    const member = this.#groups.get(groupId)?.members.find((m) => m.id === memberId);
    if (!member) return false;
    this.leave(groupId, memberId);
    member.expelled?.();
    return true;
  }

  /** The ids of a group's members, in join order. */
  members(groupId: string): string[] {
    return (this.#groups.get(groupId)?.members ?? []).map((m) => m.id);
  }

  /**
   * Like Kafka's eager protocol: every member of the current generation first hears onRevoking (its last
   * chance to commit), and only once all of them acknowledged is the new generation assigned. Joins and
   * leaves during a rebalance fold into it, as they do on a broker.
   */
  #beginRebalance(group: Group): void {
    if (group.awaiting) return;
    group.round += 1;
    const round = group.round;
    const awaiting = new Set(group.members.filter((m) => group.assigned.has(m.id)).map((m) => m.id));
    group.awaiting = awaiting;
    for (const member of group.members) {
      if (!awaiting.has(member.id)) continue;
      member.revoke(() => {
        if (group.round !== round || !awaiting.delete(member.id)) return;
        group.rejoined.add(member.id);
        this.#completeRebalance(group);
      });
    }
    this.#completeRebalance(group);
  }

  #completeRebalance(group: Group): void {
    if (!group.awaiting || group.awaiting.size > 0) return;
    group.awaiting = undefined;
    group.rejoined.clear();
    this.#assign(group);
  }

  /**
   * Round-robin assignment: every subscribed partition, in topic and partition order, goes to the next
   * member in join order that subscribes its topic, and every member hears its full new share.
   */
  #assign(group: Group): void {
    group.generation += 1;
    group.assigned = new Set(group.members.map((m) => m.id));
    group.owners.clear();
    const shares = new Map<string, TopicPartition[]>(group.members.map((m) => [m.id, []]));
    const topics = [...new Set(group.members.flatMap((m) => m.topics))].sort();
    let next = 0;
    for (const topic of topics) {
      const count = this.#logs.topic(topic).partitions.length;
      for (let partition = 0; partition < count; partition++) {
        for (let tried = 0; tried < group.members.length; tried++) {
          const index = (next + tried) % group.members.length;
          const member = group.members[index];
          if (!member?.topics.includes(topic)) continue;
          shares.get(member.id)?.push({ topic, partition });
          group.owners.set(tpKey(topic, partition), member.id);
          next = (index + 1) % group.members.length;
          break;
        }
      }
    }
    for (const member of [...group.members]) member.assign({ generation: group.generation, partitions: shares.get(member.id) ?? [] });
  }

  /**
   * The group as DescribeGroups shows it: while a rebalance is in progress `rebalancing` with no
   * assignments (as Kafka sends none before SyncGroup), otherwise each member's share of the generation.
   */
  describe(groupId: string): GroupDescription {
    const group = this.#groups.get(groupId);
    if (!group || group.members.length === 0) return { groupId, state: 'empty', members: [] };
    const rebalancing = group.awaiting !== undefined;
    const shares = new Map<string, TopicPartition[]>(group.members.map((m) => [m.id, []]));
    if (!rebalancing) {
      for (const [key, owner] of group.owners) {
        const separator = key.lastIndexOf('\u0000');
        shares.get(owner)?.push({ topic: key.slice(0, separator), partition: Number(key.slice(separator + 1)) });
      }
    }
    return {
      groupId,
      state: rebalancing ? 'rebalancing' : 'stable',
      members: group.members.map((m) => ({
        memberId: m.id,
        clientId: m.id,
        memberInfo: m.info,
        assignment: (shares.get(m.id) ?? []).sort(byTopicPartition),
      })),
    };
  }

  /** Where a member starts on a newly assigned partition: the committed offset, else the beginning or the end. */
  startOffset(groupId: string, tp: TopicPartition, fromBeginning: boolean): number {
    const committed = this.#groups.get(groupId)?.committed.get(tpKey(tp.topic, tp.partition));
    if (committed) return Number(committed.offset);
    return fromBeginning ? 0 : this.#logs.log(tp.topic, tp.partition).length;
  }

  /**
   * A transactional offset commit's group metadata (KIP-447), checked as Kafka's TxnOffsetCommit does: the
   * member must belong to the group and the generation be the group's current one. Ownership of the
   * partitions is not checked (Kafka does not).
   */
  checkTransactionalMember(groupId: string, metadata: GroupMetadata): void {
    const group = this.group(groupId);
    const known = group.members.some((m) => m.id === metadata.memberId);
    if (known && metadata.generationId === group.generation) return;
    const reason = known ? `generation ${metadata.generationId} is not the group's (${group.generation})` : 'the member is not in the group';
    throw new StreamError('TRANSPORT_FAILED', `transactional offsets of ${metadata.memberId} for group ${groupId} refused: ${reason}`, {
      context: {
        groupId,
        memberId: metadata.memberId,
        generation: metadata.generationId,
        groupFenced: true,
        kafkaError: known ? 'ILLEGAL_GENERATION' : 'UNKNOWN_MEMBER_ID',
      },
    });
  }

  /** A consumer's commit: checked strictly (membership, ownership in this generation, not past the log end). */
  commit(groupId: string, memberId: string, offsets: readonly PartitionOffset[]): void {
    const group = this.group(groupId);
    const where = `commit by ${memberId} to group ${groupId}`;
    if (!group.members.some((m) => m.id === memberId)) {
      throw new StreamError('STATE_INVALID', `${where}: the consumer is not a member of the group (not started, stopped or crashed)`, {
        context: { groupId, memberId },
      });
    }
    if (group.rejoined.has(memberId)) {
      throw new StreamError('STATE_INVALID', `${where}: a rebalance is in progress and this member already gave up its partitions`, {
        context: { groupId, memberId, generation: group.generation },
      });
    }
    if (offsets.length === 0) return;
    for (const o of offsets) {
      const offset = parseOffset(o.offset, where);
      const owner = group.owners.get(tpKey(o.topic, o.partition));
      if (owner !== memberId) {
        throw new StreamError(
          'STATE_INVALID',
          `${where}: ${tpName(o)} is not assigned to this member in generation ${group.generation}${owner ? ` (${owner} owns it)` : ''}`,
          { context: { groupId, memberId, topic: o.topic, partition: o.partition, generation: group.generation } },
        );
      }
      const end = this.#logs.log(o.topic, o.partition).length;
      if (offset > end) {
        throw new StreamError('STATE_INVALID', `${where}: offset ${offset} of ${tpName(o)} is past its log end ${end}`, {
          context: { groupId, topic: o.topic, partition: o.partition, offset: o.offset },
        });
      }
    }
    this.#faults.run({ point: 'commit', groupId, memberId, offsets });
    this.store(group, { groupId, generation: group.generation, offsets: [...offsets], memberId, transactionalId: null });
  }

  /** Records an accepted commit: the group's committed offsets move and the history grows. */
  store(group: Group, record: CommitRecord): void {
    for (const o of record.offsets) group.committed.set(tpKey(o.topic, o.partition), { topic: o.topic, partition: o.partition, offset: o.offset });
    group.history.push(record);
  }

  committed(groupId: string): PartitionOffset[] {
    return [...(this.#groups.get(groupId)?.committed.values() ?? [])].sort(byTopicPartition);
  }

  history(groupId: string): CommitRecord[] {
    return [...(this.#groups.get(groupId)?.history ?? [])];
  }
}
