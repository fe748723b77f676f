import { Coalescer } from './batcher.js';
import type { OutgoingMessage, Transport, TransportProducer } from './transport/transport.js';

/**
 * The app's one non-transactional producer, shared by `app.send` and the agents. It connects on first use
 * (again after {@link close}) and sends made at about the same time (the records of a concurrent agent)
 * share one produce request, like Kafka's `linger.ms`: one request per record would cap throughput at one
 * broker round trip per record.
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
    { maxBatch: 1000, maxWaitMs: 1 },
  );

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Sends encoded messages, resolving once the request that carried them was acknowledged. */
  send(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 1) return this.#sends.add(messages[0]!);
    return Promise.all(messages.map((m) => this.#sends.add(m))).then(() => undefined);
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
