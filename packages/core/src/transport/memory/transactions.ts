/**
 * Transactions on the memory broker: producer epochs (fencing), and transactions that buffer sends and
 * offsets until commit makes all of them visible at once.
 */
import { StreamError } from '../../errors.js';
import { tpKey } from '../shared.js';
import type { GroupMetadata, OutgoingMessage, PartitionOffset, TransportTransaction } from '../transport.js';
import type { FaultHooks } from './faults.js';
import type { GroupCoordinator } from './groups.js';
import { parseOffset, type RoutedMessage, type TopicLogs } from './log.js';

/** Offsets a transaction commits for one consumer group. */
export interface GroupOffsets {
  readonly groupId: string;
  readonly offsets: readonly PartitionOffset[];
}

/** The broker's transaction coordinator: epochs per transactional id, and the atomic commit. */
export class TransactionCoordinator {
  readonly #epochs = new Map<string, number>();
  readonly #logs: TopicLogs;
  readonly #groups: GroupCoordinator;
  readonly #faults: FaultHooks;

  constructor(logs: TopicLogs, groups: GroupCoordinator, faults: FaultHooks) {
    this.#logs = logs;
    this.#groups = groups;
    this.#faults = faults;
  }

  /** Registers a transactional producer: the new epoch fences every producer holding an older one. */
  registerProducer(transactionalId: string): number {
    const epoch = (this.#epochs.get(transactionalId) ?? 0) + 1;
    this.#epochs.set(transactionalId, epoch);
    return epoch;
  }

  epoch(transactionalId: string): number {
    return this.#epochs.get(transactionalId) ?? 0;
  }

  /**
   * Validates offsets a transaction will commit: Kafka checks that the partition exists, not who owns it;
   * with `metadata` (KIP-447) also that the member and its generation are the group's.
   */
  checkOffsets(groupId: string, offsets: readonly PartitionOffset[], metadata?: GroupMetadata): void {
    if (metadata) this.#groups.checkTransactionalMember(groupId, metadata);
    for (const o of offsets) {
      parseOffset(o.offset, `transactional offsets for group ${groupId}`);
      this.#logs.log(o.topic, o.partition);
    }
  }

  /** Appends a transaction's messages and writes its offsets in one step: nothing is visible before, all of it after. */
  commit(transactionalId: string, messages: readonly RoutedMessage[], offsets: readonly GroupOffsets[]): void {
    this.#faults.run({ point: 'transaction', transactionalId, messages, offsets });
    this.#logs.append(messages);
    for (const { groupId, offsets: list } of offsets) {
      if (list.length === 0) continue;
      const group = this.#groups.group(groupId);
      this.#groups.store(group, { groupId, generation: group.generation, offsets: [...list], memberId: null, transactionalId });
    }
  }
}

/** What a transaction needs from its producer (`MemoryProducer`): its checks and to be told when it ends. */
export interface TransactionOwner {
  /** Throws TRANSPORT_FAILED when the producer is not connected or was fenced. */
  check(operation: string): void;
  /** The transaction is over: another may begin. */
  release(transaction: MemoryTransaction): void;
  /** Whether `transaction` is still the producer's open one (a disconnect ends it). */
  isOpen(transaction: MemoryTransaction): boolean;
}

/** Buffers sends and offsets; commit makes them visible together, abort drops them. */
export class MemoryTransaction implements TransportTransaction {
  readonly #transactions: TransactionCoordinator;
  readonly #logs: TopicLogs;
  readonly #transactionalId: string;
  readonly #producer: TransactionOwner;
  readonly #messages: RoutedMessage[] = [];
  /** Group id to partition key to offset: a later sendOffsets for the same partition wins, as in Kafka. */
  readonly #offsets = new Map<string, Map<string, PartitionOffset>>();
  #state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(transactions: TransactionCoordinator, logs: TopicLogs, transactionalId: string, producer: TransactionOwner) {
    this.#transactions = transactions;
    this.#logs = logs;
    this.#transactionalId = transactionalId;
    this.#producer = producer;
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#check('send');
    this.#messages.push(...this.#logs.route(messages));
  }

  async sendOffsets(groupId: string, offsets: readonly PartitionOffset[], metadata?: GroupMetadata): Promise<void> {
    this.#check('sendOffsets');
    this.#transactions.checkOffsets(groupId, offsets, metadata);
    const group = this.#offsets.get(groupId) ?? new Map<string, PartitionOffset>();
    this.#offsets.set(groupId, group);
    for (const o of offsets) group.set(tpKey(o.topic, o.partition), { topic: o.topic, partition: o.partition, offset: o.offset });
  }

  async commit(): Promise<void> {
    this.#check('commit');
    const offsets = [...this.#offsets].map(([groupId, map]) => ({ groupId, offsets: [...map.values()] }));
    // A failed commit leaves the transaction open so that the caller can abort it, as with Kafka.
    this.#transactions.commit(this.#transactionalId, this.#messages, offsets);
    this.#finish('committed');
  }

  async abort(): Promise<void> {
    this.#check('abort');
    this.#finish('aborted');
  }

  #finish(state: 'committed' | 'aborted'): void {
    this.#state = state;
    this.#messages.length = 0;
    this.#offsets.clear();
    this.#producer.release(this);
  }

  #check(operation: string): void {
    if (this.#state !== 'open') {
      throw new StreamError('STATE_INVALID', `transaction of ${this.#transactionalId} was already ${this.#state}`, {
        context: { transactionalId: this.#transactionalId, operation },
      });
    }
    this.#producer.check(operation);
    if (!this.#producer.isOpen(this)) {
      throw new StreamError('STATE_INVALID', `transaction of ${this.#transactionalId} ended when its producer disconnected`, {
        context: { transactionalId: this.#transactionalId, operation },
      });
    }
  }
}
