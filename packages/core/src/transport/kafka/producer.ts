import { Partitioners, type Producer } from 'kafkajs';
import { StreamError, type ErrorContext } from '../../errors.js';
import { produceRequests } from '../produce-requests.js';
import type { OutgoingMessage, ProducerOptions, TransportProducer, TransportTransaction } from '../transport.js';
import type { Cluster } from './cluster.js';
import { topicMessages } from './conversions.js';
import { topicMissing, transportError } from './errors.js';
import { KafkaTransaction, type TransactionOwner } from './transactions.js';

/**
 * Idempotent producer, transactional with a transactional id.
 *
 * kafkajs details that matter here:
 * - Idempotence needs acks=-1 and, per the kafkajs docs, unlimited retries: with limited retries a failed
 *   request that did reach the broker has its sequence numbers reused by the next send, which the broker
 *   then drops as a duplicate (sendMessages.js rolls the sequence back on failure). So retries stay at
 *   the kafkajs default for idempotent producers (unlimited) and a send to a missing topic, which kafkajs
 *   would retry forever, is rejected up front with TOPIC_MISSING.
 * - `maxInFlightRequests`: kafkajs already serialises idempotent produce requests per broker with a
 *   mutex (eosManager acquireBrokerLock), so 5 costs no ordering; transactional producers use 1 as the
 *   kafkajs transactions docs require for exactly-once.
 * - A transaction whose commit or abort failed leaves kafkajs' transaction state machine in COMMITTING or
 *   ABORTING, which has no way back (transactionStateMachine.js): every later transaction() throws.
 *   We then replace the kafkajs producer; its InitProducerId makes the coordinator finish or abort the
 *   old transaction. A fenced producer is never replaced: that would fence the instance that fenced us.
 */
export class KafkaProducer implements TransportProducer, TransactionOwner {
  readonly #cluster: Cluster;
  readonly #transactionalId: string | undefined;
  #producer: Producer;
  #connected = false;
  #fenced: StreamError | undefined;
  #needsReset = false;
  #open: KafkaTransaction | undefined;

  constructor(cluster: Cluster, options: ProducerOptions) {
    this.#cluster = cluster;
    this.#transactionalId = options.transactionalId;
    this.#producer = this.#create();
  }

  #create(): Producer {
    const transactional = this.#transactionalId !== undefined;
    return this.#cluster.kafka.producer({
      idempotent: true,
      maxInFlightRequests: transactional ? 1 : 5,
      allowAutoTopicCreation: false,
      // Explicit, or kafkajs warns on every producer; it is the Java client's murmur2 partitioner, so keys
      // land on the same partitions as with Java producers.
      createPartitioner: Partitioners.DefaultPartitioner,
      ...(transactional ? { transactionalId: this.#transactionalId } : {}),
    });
  }

  get #context(): ErrorContext {
    return this.#transactionalId === undefined ? {} : { transactionalId: this.#transactionalId };
  }

  /**
   * Connects. A transactional producer also registers its transactional id right away (kafkajs does it
   * lazily at the first transaction): that fences a zombie with the same id now, not at our first commit.
   */
  async connect(): Promise<void> {
    try {
      await this.#producer.connect();
      this.#connected = true;
      if (this.#transactionalId !== undefined) {
        // Begins and ends an empty transaction: InitProducerId, no EndTxn (nothing was added to it).
        const tx = await this.#producer.transaction();
        await tx.abort();
      }
    } catch (error) {
      throw this.#failure('connect failed', error);
    }
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.#transactionalId !== undefined) {
      throw new StreamError('STATE_INVALID', `producer ${this.#transactionalId} is transactional: send inside transaction()`, { context: this.#context });
    }
    if (messages.length === 0) return;
    await this.ensureTopics(messages);
    try {
      for (const request of produceRequests(messages)) await this.#producer.sendBatch({ topicMessages: topicMessages(request), acks: -1 });
    } catch (error) {
      throw this.#failure(`send to ${[...new Set(messages.map((m) => m.topic))].join(', ')} failed`, error);
    }
  }

  /** Rejects with TOPIC_MISSING when a message's topic does not exist (see the class notes). */
  async ensureTopics(messages: readonly OutgoingMessage[]): Promise<void> {
    let missing: string[];
    try {
      missing = await this.#cluster.missingTopics(messages.map((m) => m.topic));
    } catch (error) {
      throw transportError('topic check before send failed', error, this.#context);
    }
    if (missing.length > 0) throw topicMissing(missing, 'send');
  }

  async transaction(): Promise<TransportTransaction> {
    if (this.#transactionalId === undefined) throw new StreamError('STATE_INVALID', 'transaction() needs a producer created with a transactionalId');
    if (this.#fenced) throw this.#fencedAgain();
    if (this.#open?.active)
      throw new StreamError('STATE_INVALID', `producer ${this.#transactionalId}: end the open transaction before beginning another`, {
        context: this.#context,
      });
    try {
      if (this.#needsReset) await this.#reset();
      const tx = await this.#producer.transaction();
      this.#open = new KafkaTransaction(this, tx);
      return this.#open;
    } catch (error) {
      throw this.#failure('begin transaction failed', error);
    }
  }

  /** Replaces the kafkajs producer; stays due until the new one connected (a broker may be down meanwhile). */
  async #reset(): Promise<void> {
    const old = this.#producer;
    this.#producer = this.#create();
    await old.disconnect().catch(() => undefined);
    if (this.#connected) await this.#producer.connect();
    this.#needsReset = false;
  }

  /** Maps a failure, remembering fencing (final) and broken transaction state (reset on next begin). */
  #failure(action: string, error: unknown, endedTransaction = false): StreamError {
    const mapped = transportError(this.#transactionalId === undefined ? action : `producer ${this.#transactionalId}: ${action}`, error, this.#context);
    if (mapped.context.fenced === true) this.#fenced ??= mapped;
    else if (endedTransaction) this.#needsReset = true;
    return mapped;
  }

  #fencedAgain(): StreamError {
    const first = this.#fenced;
    return new StreamError('TRANSPORT_FAILED', `producer ${this.#transactionalId ?? ''} was fenced and cannot be used again: create a new one`, {
      cause: first,
      context: { ...this.#context, fenced: true },
    });
  }

  /** Runs one kafkajs transaction call, mapping its failure. */
  async run(action: string, fn: () => Promise<void>, endsTransaction: boolean): Promise<void> {
    if (this.#fenced) throw this.#fencedAgain();
    try {
      await fn();
    } catch (error) {
      throw this.#failure(action, error, endsTransaction);
    }
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
    try {
      await this.#producer.disconnect();
    } catch (error) {
      throw transportError('producer disconnect failed', error, this.#context);
    }
  }
}
