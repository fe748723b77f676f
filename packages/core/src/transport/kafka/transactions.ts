import type { Transaction } from 'kafkajs';
import { StreamError } from '../../errors.js';
import { produceRequests } from '../produce-requests.js';
import type { OutgoingMessage, PartitionOffset, TransportTransaction } from '../transport.js';
import { groupByTopicOffsets, topicMessages } from './conversions.js';

/** What a transaction needs from its producer (`KafkaProducer`): the topic check and its failure mapping. */
export interface TransactionOwner {
  /** Rejects with TOPIC_MISSING when a message's topic does not exist. */
  ensureTopics(messages: readonly OutgoingMessage[]): Promise<void>;
  /** Runs one kafkajs transaction call, mapping its failure (and remembering fencing or a broken transaction state). */
  run(action: string, fn: () => Promise<void>, endsTransaction: boolean): Promise<void>;
}

/** One kafkajs transaction. After a failed commit, `abort()` resolves without effect: the next transaction re-initialises the producer, which aborts it on the broker if it did not commit. */
export class KafkaTransaction implements TransportTransaction {
  readonly #owner: TransactionOwner;
  readonly #tx: Transaction;
  #state: 'open' | 'ended' | 'failed' = 'open';

  constructor(owner: TransactionOwner, tx: Transaction) {
    this.#owner = owner;
    this.#tx = tx;
  }

  get active(): boolean {
    return this.#state === 'open';
  }

  #requireOpen(action: string): void {
    if (this.#state !== 'open') throw new StreamError('STATE_INVALID', `transaction ${action}: the transaction already ended`);
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#requireOpen('send');
    if (messages.length === 0) return;
    await this.#owner.ensureTopics(messages);
    for (const request of produceRequests(messages)) {
      await this.#owner.run(
        'transactional send failed',
        () => this.#tx.sendBatch({ topicMessages: topicMessages(request), acks: -1 }).then(() => undefined),
        false,
      );
    }
  }

  async sendOffsets(groupId: string, offsets: readonly PartitionOffset[]): Promise<void> {
    this.#requireOpen('sendOffsets');
    if (offsets.length === 0) return;
    const topics = groupByTopicOffsets(offsets);
    await this.#owner.run(`sendOffsets for group ${groupId} failed`, () => this.#tx.sendOffsets({ consumerGroupId: groupId, topics }), false);
  }

  async commit(): Promise<void> {
    this.#requireOpen('commit');
    await this.#end('commit failed', () => this.#tx.commit());
  }

  async abort(): Promise<void> {
    if (this.#state === 'failed') return;
    this.#requireOpen('abort');
    await this.#end('abort failed', () => this.#tx.abort());
  }

  /** Ends the transaction with `fn`: `ended` when it succeeds, else `failed` (a later abort is then a no-op). */
  async #end(action: string, fn: () => Promise<void>): Promise<void> {
    try {
      await this.#owner.run(action, fn, true);
      this.#state = 'ended';
    } catch (error) {
      this.#state = 'failed';
      throw error;
    }
  }
}
