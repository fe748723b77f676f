import { StreamError } from '../errors.js';
import type { Logger } from '../logger.js';
import { KafkaTransport, type KafkaTransportOptions } from './kafka/index.js';
import type { Transport } from './transport.js';

/** TLS, SASL and timeouts of the kafkajs transport: what an app may set beside its brokers. */
export type KafkaConnectionOptions = Omit<KafkaTransportOptions, 'brokers' | 'clientId' | 'logger'>;

/** An app's choice of transport: a given one, or kafkajs on `brokers`. */
export interface TransportSelection {
  /** The app's id: the kafkajs client id, and named in the error when no broker is given. */
  readonly id: string;
  /** The kafkajs client id; default `id`. */
  readonly clientId?: string;
  readonly brokers?: readonly string[];
  readonly kafka?: KafkaConnectionOptions;
  readonly transport?: Transport;
}

/**
 * The app's transport: `transport` when given (e.g. a `MemoryTransport` in tests), else a kafkajs transport
 * on `brokers` logging through a `kafkajs` child of `log`. Throws `CONFIG_INVALID` when neither is given.
 */
export function selectTransport(selection: TransportSelection, log: Logger): Transport {
  if (selection.transport) return selection.transport;
  if (!selection.brokers || selection.brokers.length === 0) {
    throw new StreamError('CONFIG_INVALID', `app ${selection.id}: give \`brokers\` (e.g. KAFKA_BROKERS=127.0.0.1:9092) or a \`transport\``);
  }
  return new KafkaTransport({
    ...selection.kafka,
    brokers: [...selection.brokers],
    clientId: selection.clientId ?? selection.id,
    logger: log.child({ component: 'kafkajs' }),
  });
}
