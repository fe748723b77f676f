/**
 * The second Kafka transport: @platformatic/kafka (pure TypeScript, maintained) behind the {@link Transport}
 * seam, held to the same contract suite as the kafkajs one. Select it with `createApp({ transport: 'platformatic' })`
 * or `KAFKA_CLIENT=platformatic`.
 */
import type { ConnectionOptions } from 'node:tls';
import { StreamError } from '../../errors.js';
import type { KafkaSaslOptions } from '../kafka/index.js';
import type { ConsumerOptions, ProducerOptions, ReadPartitionOptions, Transport, TransportAdmin, TransportConsumer, TransportProducer } from '../transport.js';
import { PlatformaticAdmin } from './admin.js';
import { Cluster, type ClientOptions } from './cluster.js';
import { PlatformaticConsumer, type GroupProtocol } from './consumer.js';
import { PlatformaticProducer } from './producer.js';
import { readPlatformaticPartition } from './read-partition.js';

export type { GroupProtocol } from './consumer.js';
export { PlatformaticConsumer } from './consumer.js';
export { PlatformaticProducer, PlatformaticTransaction } from './producer.js';

/** Options of {@link PlatformaticTransport}: the kafkajs transport's connection options, plus the group protocol. */
export interface PlatformaticTransportOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** Client id sent to the brokers. */
  readonly clientId: string;
  /** TLS: `true` for the system CAs, or Node TLS options (ca, cert, key, servername…). */
  readonly ssl?: boolean | ConnectionOptions;
  /** SASL PLAIN, SCRAM-SHA-256/512 or OAUTHBEARER (the token function is asked on every connection). */
  readonly sasl?: KafkaSaslOptions;
  /** Time to establish a connection. */
  readonly connectionTimeoutMs?: number;
  /** Time to wait for a response to a request. */
  readonly requestTimeoutMs?: number;
  /** How long a fetch waits for data; also the idle poll when every partition is paused. Default 100 ms. */
  readonly fetchMaxWaitMs?: number;
  /**
   * Consecutive failed fetch rounds (broker gone) before the consumer reports a crash, or a partition read
   * (`readPartition`) rejects. Default 20 (about 30 s with backoff).
   */
  readonly maxConsumerRestarts?: number;
  /**
   * The consumer group protocol: `classic` (default: JoinGroup/SyncGroup, eager) or `consumer` (KIP-848,
   * Kafka 4.0 or later: broker-side assignment, incremental revocation; see ConsumerGroupMembership). With
   * `consumer` the broker's group.consumer.* settings decide the heartbeat interval and session timeout
   * (the consumer's heartbeatIntervalMs and sessionTimeoutMs are not used), and memberInfo is not published.
   */
  readonly groupProtocol?: GroupProtocol;
}

function clientOptions(options: PlatformaticTransportOptions): ClientOptions {
  const sasl = options.sasl;
  return {
    clientId: options.clientId,
    bootstrapBrokers: [...options.brokers],
    ...(options.connectionTimeoutMs === undefined ? {} : { connectTimeout: options.connectionTimeoutMs }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeout: options.requestTimeoutMs }),
    ...(options.ssl === undefined || options.ssl === false ? {} : { tls: options.ssl === true ? {} : options.ssl }),
    ...(sasl === undefined
      ? {}
      : sasl.mechanism === 'oauthbearer'
        ? {
            sasl: {
              mechanism: 'OAUTHBEARER' as const,
              token: async () => {
                const value = (await sasl.token()).trim();
                if (value.length === 0) throw new StreamError('CONFIG_INVALID', 'platformatic transport: the OAUTHBEARER token is empty');
                return value;
              },
            },
          }
        : {
            sasl: {
              mechanism:
                sasl.mechanism === 'plain' ? ('PLAIN' as const) : sasl.mechanism === 'scram-sha-256' ? ('SCRAM-SHA-256' as const) : ('SCRAM-SHA-512' as const),
              username: sasl.username,
              password: sasl.password,
            },
          }),
  };
}

/**
 * The @platformatic/kafka transport. Each consumer, producer and admin is its own client (own connections).
 *
 * @example
 * const transport = new PlatformaticTransport({ brokers: ['127.0.0.1:9092'], clientId: 'order-emailer' });
 */
export class PlatformaticTransport implements Transport {
  readonly name = 'platformatic';
  readonly #cluster: Cluster;
  readonly #fetchMaxWaitMs: number;
  readonly #maxFailures: number;
  readonly #groupProtocol: GroupProtocol;

  constructor(options: PlatformaticTransportOptions) {
    if (options.brokers.length === 0) throw new StreamError('CONFIG_INVALID', 'platformatic transport: `brokers` is empty (e.g. KAFKA_BROKERS=127.0.0.1:9092)');
    if (options.groupProtocol !== undefined && options.groupProtocol !== 'classic' && options.groupProtocol !== 'consumer')
      throw new StreamError('CONFIG_INVALID', `platformatic transport: groupProtocol must be 'classic' or 'consumer', not ${String(options.groupProtocol)}`);
    this.#cluster = new Cluster(clientOptions(options));
    this.#fetchMaxWaitMs = options.fetchMaxWaitMs ?? 100;
    this.#maxFailures = options.maxConsumerRestarts ?? 20;
    this.#groupProtocol = options.groupProtocol ?? 'classic';
  }

  consumer(options: ConsumerOptions): TransportConsumer {
    return new PlatformaticConsumer(this.#cluster, options, this.#fetchMaxWaitMs, this.#maxFailures, this.#groupProtocol);
  }

  producer(options: ProducerOptions = {}): TransportProducer {
    return new PlatformaticProducer(this.#cluster, options);
  }

  /** Reads one partition on a client of its own, outside any group (see read-partition.ts). */
  readPartition(options: ReadPartitionOptions): Promise<void> {
    return readPlatformaticPartition(this.#cluster, { fetchMaxWaitMs: this.#fetchMaxWaitMs, maxFailures: this.#maxFailures }, options);
  }

  admin(): TransportAdmin {
    return new PlatformaticAdmin(this.#cluster);
  }
}
