import { StreamError } from '../errors.js';
import type { Logger } from '../logger.js';
import { KafkaTransport, type KafkaTransportOptions } from './kafka/index.js';
import { PlatformaticTransport, type GroupProtocol } from './platformatic/index.js';
import type { Transport } from './transport.js';

/** The Kafka clients a transport can be built on: kafkajs (the default) or @platformatic/kafka. */
export const KAFKA_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type KafkaClient = (typeof KAFKA_CLIENTS)[number];

/**
 * TLS, SASL and timeouts of the Kafka transports: what an app may set beside its brokers. `logLevel` applies
 * to kafkajs only (@platformatic/kafka logs through the `debug` module: DEBUG=plt:kafka*); `groupProtocol`
 * to @platformatic/kafka only (kafkajs has the classic protocol only).
 */
export type KafkaConnectionOptions = Omit<KafkaTransportOptions, 'brokers' | 'clientId' | 'logger'> & {
  /** The consumer group protocol (@platformatic/kafka only): `classic` (default) or `consumer` (KIP-848, Kafka 4.x). */
  readonly groupProtocol?: GroupProtocol;
};

/** An app's choice of transport: a given one, or a Kafka client on `brokers`. */
export interface TransportSelection {
  /** The app's id: the client id, and named in the error when no broker is given. */
  readonly id: string;
  /** The client id; default `id`. */
  readonly clientId?: string;
  readonly brokers?: readonly string[];
  readonly kafka?: KafkaConnectionOptions;
  /** A transport, or the Kafka client to build one on (default `'kafkajs'`). */
  readonly transport?: Transport | KafkaClient;
}

/**
 * The app's transport: `transport` when it is one (e.g. a `MemoryTransport` in tests), else a Kafka transport
 * on `brokers` with the client `transport` names (default kafkajs, logging through a `kafkajs` child of `log`).
 * Throws `CONFIG_INVALID` when no broker is given, for an unknown client, or for an option the chosen
 * client does not have.
 */
export function selectTransport(selection: TransportSelection, log: Logger): Transport {
  const choice = selection.transport ?? 'kafkajs';
  if (typeof choice !== 'string') return choice;
  if (!(KAFKA_CLIENTS as readonly string[]).includes(choice)) {
    throw new StreamError('CONFIG_INVALID', `app ${selection.id}: transport must be a Transport or one of ${KAFKA_CLIENTS.join(', ')}, not ${String(choice)}`);
  }
  if (!selection.brokers || selection.brokers.length === 0) {
    throw new StreamError('CONFIG_INVALID', `app ${selection.id}: give \`brokers\` (e.g. KAFKA_BROKERS=127.0.0.1:9092) or a \`transport\``);
  }
  const { groupProtocol, logLevel, ...common } = selection.kafka ?? {};
  const clientId = selection.clientId ?? selection.id;
  if (choice === 'platformatic') {
    return new PlatformaticTransport({ ...common, ...(groupProtocol === undefined ? {} : { groupProtocol }), brokers: [...selection.brokers], clientId });
  }
  if (groupProtocol !== undefined && groupProtocol !== 'classic') {
    throw new StreamError(
      'CONFIG_INVALID',
      `app ${selection.id}: kafka.groupProtocol '${groupProtocol}' needs the platformatic transport (kafkajs has the classic group protocol only): set transport: 'platformatic' (KAFKA_CLIENT=platformatic)`,
    );
  }
  return new KafkaTransport({
    ...common,
    ...(logLevel === undefined ? {} : { logLevel }),
    brokers: [...selection.brokers],
    clientId,
    logger: log.child({ component: 'kafkajs' }),
  });
}
