/**
 * An in-memory broker and transport that behave like kafkajs against a real Kafka cluster (auto-create
 * off, eager rebalances, read-committed transactions), so the runtime runs unchanged in unit tests.
 */
import { StreamError } from '../../errors.js';
import type { ReadPartitionOptions, ConsumerOptions, ProducerOptions, Transport, TransportAdmin, TransportConsumer, TransportProducer } from '../transport.js';
import { MemoryAdmin } from './admin.js';
import { MemoryBroker, brokerCore } from './broker.js';
import { GroupMetadataMemoryConsumer, MemoryConsumer } from './consumer.js';
import { MemoryProducer } from './producer.js';

export { MemoryBroker };
export type { FaultEvent, FaultHook, FaultPoint } from './faults.js';
export type { CommitRecord } from './groups.js';
export type { StoredMessage } from './log.js';
export type { GroupOffsets } from './transactions.js';

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions {
  /** Most messages per fetched batch (default 500). */
  readonly maxBatchSize?: number;
  /**
   * Consumers tell their group metadata and transactions check it (KIP-447), as on the platformatic
   * transport: the runtime then runs exactly-once with one transactional producer per consumer. Default
   * false: one per input partition, as on kafkajs.
   */
  readonly groupMetadata?: boolean;
}

const DEFAULT_MAX_BATCH_SIZE = 500;

/**
 * The in-memory {@link Transport}: consumers, producers and admins on a {@link MemoryBroker}.
 *
 * @example
 * const app = new App({ id: 'emailer', transport: new MemoryTransport() });
 */
export class MemoryTransport implements Transport {
  readonly name = 'memory';
  readonly broker: MemoryBroker;
  readonly #maxBatchSize: number;
  readonly #groupMetadata: boolean;

  constructor(broker: MemoryBroker = new MemoryBroker(), options: MemoryTransportOptions = {}) {
    const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new StreamError('CONFIG_INVALID', `memory transport: maxBatchSize must be a positive integer, got ${maxBatchSize}`);
    }
    this.broker = broker;
    this.#maxBatchSize = maxBatchSize;
    this.#groupMetadata = options.groupMetadata ?? false;
  }

  consumer(options: ConsumerOptions): TransportConsumer {
    const Consumer = this.#groupMetadata ? GroupMetadataMemoryConsumer : MemoryConsumer;
    return new Consumer(brokerCore(this.broker), options, this.#maxBatchSize);
  }

  producer(options: ProducerOptions = {}): TransportProducer {
    return new MemoryProducer(brokerCore(this.broker), options);
  }

  /** Reads `end` offsets of the partition in batches of `maxBatchSize`, yielding to the event loop between them. */
  async readPartition(options: ReadPartitionOptions): Promise<void> {
    const core = brokerCore(this.broker);
    const log = core.logs.log(options.topic, options.partition);
    let position = options.start ?? 0;
    while (position < options.end) {
      options.signal.throwIfAborted();
      const batch = log.slice(position, Math.min(options.end, position + this.#maxBatchSize));
      if (batch.length === 0) {
        throw new StreamError('STATE_INVALID', `${options.topic}/${options.partition}: end offset ${options.end} is past the log end ${log.length}`);
      }
      options.onMessages(batch);
      position += batch.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    options.signal.throwIfAborted();
  }

  admin(): TransportAdmin {
    return new MemoryAdmin(brokerCore(this.broker));
  }
}
