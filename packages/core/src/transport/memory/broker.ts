/**
 * The memory broker: one in-memory "cluster" made of its topic logs, group coordinator, transaction
 * coordinator and fault hooks. Consumers, producers and admins reach those parts through
 * {@link brokerCore}; tests see only {@link MemoryBroker}'s inspection and fault-injection surface.
 */
import { StreamError } from '../../errors.js';
import type { PartitionOffset } from '../transport.js';
import { FaultHooks, type FaultHook, type FaultPoint } from './faults.js';
import { GroupCoordinator, type CommitRecord } from './groups.js';
import { TopicLogs, type StoredMessage } from './log.js';
import { TransactionCoordinator } from './transactions.js';

/** Everything the broker knows and does; kept off {@link MemoryBroker}'s public surface. */
export class BrokerCore {
  readonly faults = new FaultHooks();
  readonly logs = new TopicLogs(this.faults);
  readonly groups = new GroupCoordinator(this.logs, this.faults);
  readonly transactions = new TransactionCoordinator(this.logs, this.groups, this.faults);
}

let coreOf: (broker: MemoryBroker) => BrokerCore;

/**
 * An in-memory Kafka cluster: topics of append-only partitions, consumer groups with eager round-robin
 * rebalances, and transactional producers with fencing. Share one between several
 * {@link MemoryTransport}s to run several app instances against the same "cluster".
 *
 * @example
 * const broker = new MemoryBroker();
 * broker.createTopic('orders', 3);
 * const transport = new MemoryTransport(broker);
 */
export class MemoryBroker {
  readonly #core = new BrokerCore();

  static {
    coreOf = (broker) => broker.#core;
  }

  /**
   * Creates a topic; returns false, leaving it untouched, when it already exists.
   *
   * @example
   * broker.createTopic('orders', 3);
   */
  createTopic(name: string, partitions = 1): boolean {
    return this.#core.logs.createTopic(name, partitions);
  }

  /** The names of all topics, sorted. */
  topics(): string[] {
    return this.#core.logs.topicNames();
  }

  /**
   * The messages of a topic (all partitions, partition by partition in offset order) or of one partition.
   * Throws TOPIC_MISSING for an unknown topic or partition.
   *
   * @example
   * expect(broker.messages('orders', 0).map((m) => m.value?.toString())).toEqual(['a', 'b']);
   */
  messages(topic: string, partition?: number): StoredMessage[] {
    if (partition !== undefined) return [...this.#core.logs.log(topic, partition)];
    return this.#core.logs.topic(topic).partitions.flat();
  }

  /** The log end offset of every partition of a topic. */
  endOffsets(topic: string): PartitionOffset[] {
    return this.#core.logs.endOffsets(topic);
  }

  /**
   * A group's committed offsets, sorted by topic and partition (empty for an unknown group).
   *
   * @example
   * expect(broker.committed('emailer')).toEqual([{ topic: 'orders', partition: 0, offset: '2' }]);
   */
  committed(groupId: string): PartitionOffset[] {
    return this.#core.groups.committed(groupId);
  }

  /** Every accepted commit of a group in order, by consumers and by transactions. Rejected commits are not listed. */
  commitHistory(groupId: string): CommitRecord[] {
    return this.#core.groups.history(groupId);
  }

  /** A group's current generation: 0 before anyone joined, then one more per join or leave. */
  generation(groupId: string): number {
    return this.#core.groups.generation(groupId);
  }

  /** The member ids of a group, in join order. */
  members(groupId: string): string[] {
    return this.#core.groups.members(groupId);
  }

  /**
   * Removes a member from its group as an expired session would (a stalled process): the others rebalance
   * without it at once; the member learns it only at its next heartbeat (after its `heartbeatIntervalMs`),
   * meanwhile processing what it holds, then joins again as a new member. Returns false for a non-member.
   *
   * @example
   * broker.expel('emailer', broker.members('emailer')[0]!);
   */
  expel(groupId: string, memberId: string): boolean {
    return this.#core.groups.expel(groupId, memberId);
  }

  /**
   * Runs `hook` before every operation at `point`; if it throws, the operation fails with that error and
   * changes nothing (a throwing `fetch` hook crashes the consumer). Returns a function that removes the hook.
   *
   * @example
   * const remove = broker.inject('commit', (e) => { if (e.groupId === 'emailer') throw new Error('broker down'); });
   */
  inject<P extends FaultPoint>(point: P, hook: FaultHook<P>): () => void {
    return this.#core.faults.inject(point, hook);
  }

  /**
   * Makes the next `times` operations at `point` fail with `error` (a TRANSPORT_FAILED StreamError by default).
   *
   * @example
   * broker.failNext('commit', 2);
   */
  failNext(point: FaultPoint, times = 1, error?: Error): () => void {
    let left = times;
    const remove = this.#core.faults.inject(point, () => {
      if (left <= 0) return;
      left -= 1;
      if (left === 0) remove();
      throw error ?? new StreamError('TRANSPORT_FAILED', `injected ${point} failure`, { context: { injected: true } });
    });
    return remove;
  }
}

/** The parts of `broker`, for the transport's consumers, producers and admins. */
export function brokerCore(broker: MemoryBroker): BrokerCore {
  return coreOf(broker);
}
