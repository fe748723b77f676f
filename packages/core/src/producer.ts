import { Coalescer } from './batcher.js';
import type { OutgoingMessage, Transport, TransportProducer } from './transport/transport.js';

/**
 * The app's one non-transactional producer, shared by `app.send` and the agents. It connects on first use
 * (again after {@link close}) and sends made at about the same time (the records of a concurrent agent)
 * share one produce request, like Kafka's `linger.ms`: one request per record would cap throughput at one
 * broker round trip per record.
 *
 * At most two requests are in flight (kafkajs sends an idempotent producer's requests to a broker one at a
 * time anyway): while they are, sends keep joining the next request, up to 4,000 messages, so that under
 * load requests grow with the broker's round trip instead of going every millisecond. Passthrough at
 * 200,000 records made 176 produce requests instead of 379 (`pnpm bench --scenario passthrough`).
 */
export class SharedProducer {
  readonly #transport: Transport;
  #producer: TransportProducer | undefined;
  #ready: Promise<TransportProducer> | undefined;
  readonly #sends = new Coalescer<OutgoingMessage>(
    async (messages) => {
      const producer = await this.connect();
      await producer.send(messages);
    },
    { maxBatch: 4000, maxWaitMs: 1, maxInFlight: 2 },
  );

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /**
   * Sends encoded messages in one produce request (with others' sends, never split over two), resolving
   * once it was acknowledged. Messages of one partition sent together land in their order: a table's
   * changelog entries rely on it (split over two requests in flight, a retried one landed after the next).
   */
  send(messages: readonly OutgoingMessage[]): Promise<void> {
    return this.#sends.addAll(messages);
  }

  /** Connects the producer unless it is connected or connecting; a failed connect is tried again next time. */
  connect(): Promise<TransportProducer> {
    this.#ready ??= (async () => {
      const producer = this.#transport.producer();
      await producer.connect();
      this.#producer = producer;
      return producer;
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /** Disconnects the connected producer, if any; rejects with the transport's error when that fails. */
  async close(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    this.#ready = undefined;
    if (producer) await producer.disconnect();
  }
}
