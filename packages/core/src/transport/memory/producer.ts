import { StreamError } from '../../errors.js';
import type { OutgoingMessage, ProducerOptions, TransportProducer, TransportTransaction } from '../transport.js';
import type { BrokerCore } from './broker.js';
import { MemoryTransaction, type TransactionOwner } from './transactions.js';

/** A producer on the memory broker; transactional (with fencing by epoch) when it has a transactional id. */
export class MemoryProducer implements TransportProducer, TransactionOwner {
  readonly #core: BrokerCore;
  readonly #transactionalId: string | undefined;
  #connected = false;
  #epoch = 0;
  #open: MemoryTransaction | undefined;

  constructor(core: BrokerCore, options: ProducerOptions) {
    this.#core = core;
    this.#transactionalId = options.transactionalId;
  }

  async connect(): Promise<void> {
    if (this.#connected) return;
    if (this.#transactionalId !== undefined) this.#epoch = this.#core.transactions.registerProducer(this.#transactionalId);
    this.#connected = true;
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.check('send');
    if (this.#transactionalId !== undefined) {
      throw new StreamError('STATE_INVALID', `producer ${this.#transactionalId} is transactional: send through transaction()`, {
        context: { transactionalId: this.#transactionalId },
      });
    }
    this.#core.logs.produce(messages);
    // A network round trip: a caller sending in a loop lets fetch loops and handlers run in between, as on
    // a real broker, instead of starving them with promises that only ever resolve as microtasks.
    await new Promise((resolve) => setImmediate(resolve));
  }

  async transaction(): Promise<TransportTransaction> {
    this.check('transaction');
    const transactionalId = this.#transactionalId;
    if (transactionalId === undefined) {
      throw new StreamError('STATE_INVALID', 'transaction() needs a transactional producer: create it with { transactionalId }');
    }
    if (this.#open) {
      throw new StreamError('STATE_INVALID', `producer ${transactionalId} already has an open transaction: commit or abort it first`, {
        context: { transactionalId },
      });
    }
    const transaction = new MemoryTransaction(this.#core.transactions, this.#core.logs, transactionalId, this);
    this.#open = transaction;
    return transaction;
  }

  async disconnect(): Promise<void> {
    // An open transaction dies with its producer, as Kafka aborts it once the producer is gone.
    this.#open = undefined;
    this.#connected = false;
  }

  /** Throws TRANSPORT_FAILED when the producer is not connected or was fenced by a newer one with its transactional id. */
  check(operation: string): void {
    const id = this.#transactionalId;
    if (!this.#connected) {
      throw new StreamError('TRANSPORT_FAILED', `producer${id === undefined ? '' : ` ${id}`} is not connected: call connect() first`, {
        context: { operation, ...(id === undefined ? {} : { transactionalId: id }) },
      });
    }
    if (id !== undefined && this.#core.transactions.epoch(id) !== this.#epoch) {
      throw new StreamError(
        'TRANSPORT_FAILED',
        `producer ${id} was fenced by a newer producer with the same transactional id (epoch ${this.#core.transactions.epoch(id)} > ${this.#epoch})`,
        { context: { operation, transactionalId: id, fenced: true } },
      );
    }
  }

  /** The transaction is over: another may begin. */
  release(transaction: MemoryTransaction): void {
    if (this.#open === transaction) this.#open = undefined;
  }

  isOpen(transaction: MemoryTransaction): boolean {
    return this.#open === transaction;
  }
}
