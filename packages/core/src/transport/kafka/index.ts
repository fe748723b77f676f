/**
 * The production transport: kafkajs 2.2.x behind the {@link Transport} seam.
 *
 * What shapes this transport (consumer.ts above all) is how kafkajs consumes. Its fetcher awaits every
 * batch of one fetch before it fetches again, so a slow `eachBatch` stalls every partition led by that
 * broker (and the heartbeats).
 * We therefore never process inside `eachBatch`: the batch goes to the runtime synchronously, the runtime
 * says how many records (a prefix) it buffered, we move kafkajs' fetch position past exactly those and
 * return. When the runtime's buffer is full it pauses the partition (through {@link TransportConsumer.pause});
 * on resume kafkajs fetches again from that position, so nothing is skipped or delivered twice.
 */
import type { ConnectionOptions } from 'node:tls';
import { Kafka, type SASLOptions } from 'kafkajs';
import { StreamError } from '../../errors.js';
import type { ReadPartitionOptions, ConsumerOptions, ProducerOptions, Transport, TransportAdmin, TransportConsumer, TransportProducer } from '../transport.js';
import { KafkaAdmin } from './admin.js';
import { Cluster } from './cluster.js';
import { KafkaConsumer } from './consumer.js';
import { KAFKAJS_LEVELS, createLogCreator, type KafkaLogFunction, type KafkaLogLevel, type KafkaLogSink } from './logging.js';
import { KafkaProducer } from './producer.js';
import { readKafkaPartition } from './read-partition.js';

export type { KafkaLogEntry, KafkaLogFunction, KafkaLogLevel, KafkaLogSink } from './logging.js';

/** SASL credentials for the mechanisms the transport supports: a password (PLAIN, SCRAM) or an OAuth bearer token. */
export type KafkaSaslOptions = KafkaSaslPasswordOptions | KafkaSaslOauthBearerOptions;

/** SASL PLAIN or SCRAM-SHA-256/512. */
export interface KafkaSaslPasswordOptions {
  readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  readonly username: string;
  /** Never logged: the log bridge removes it from every kafkajs log line. */
  readonly password: string;
}

/** SASL OAUTHBEARER (kafkajs `oauthBearerProvider`). */
export interface KafkaSaslOauthBearerOptions {
  readonly mechanism: 'oauthbearer';
  /**
   * The bearer token, asked for on every connection and re-authentication, so a rotated token (a file an
   * agent renews, say) is picked up. Never logged: each token it returns is cut out of every kafkajs log line.
   */
  readonly token: () => string | Promise<string>;
}

/** Options of {@link KafkaTransport}. */
export interface KafkaTransportOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** Client id sent to the brokers (quotas, broker logs). */
  readonly clientId: string;
  /** TLS: `true` for the system CAs, or Node TLS options (ca, cert, key, servername…). */
  readonly ssl?: boolean | ConnectionOptions;
  /** SASL PLAIN or SCRAM credentials (use with `ssl` outside a trusted network). */
  readonly sasl?: KafkaSaslOptions;
  /** Time to establish a connection. kafkajs default 1000 ms. */
  readonly connectionTimeoutMs?: number;
  /** Time to wait for a response to a request. kafkajs default 30000 ms. */
  readonly requestTimeoutMs?: number;
  /** Where kafkajs logs go. Default: warnings and errors to stderr as JSON lines. */
  readonly logger?: KafkaLogFunction | KafkaLogSink;
  /** The most verbose kafkajs level passed on. Default `'warn'`: kafkajs logs every pause/resume at info. */
  readonly logLevel?: KafkaLogLevel | 'nothing';
  /**
   * How many times in a row the consumer restarts itself after a retriable failure (broker or coordinator
   * gone, retries exhausted) without getting an assignment in between, before it reports a crash. Default 5.
   */
  readonly maxConsumerRestarts?: number;
  /**
   * How long a fetch waits for data (kafkajs `maxWaitTimeInMs`). kafkajs also waits this long when every
   * partition is paused (consumerGroup.js fetch); the `@stream/core` patch of kafkajs ends that wait when a
   * partition resumes, but a fetch already in flight for other partitions still holds a resumed one back up
   * to this long. The price of a low value is idle fetch requests (1000 / fetchMaxWaitMs per second per
   * broker). Default 100 ms.
   */
  readonly fetchMaxWaitMs?: number;
}

/** kafkajs' SASL options for ours; every secret handed to kafkajs is added to `secrets` first. */
function saslOptions(options: KafkaSaslOptions, secrets: string[]): SASLOptions {
  if (options.mechanism !== 'oauthbearer') {
    secrets.push(options.password);
    return { mechanism: options.mechanism, username: options.username, password: options.password };
  }
  const token = options.token;
  return {
    mechanism: 'oauthbearer',
    oauthBearerProvider: async () => {
      const value = (await token()).trim();
      if (value.length === 0) throw new StreamError('CONFIG_INVALID', 'kafka transport: the OAUTHBEARER token is empty');
      if (!secrets.includes(value)) secrets.push(value);
      // Keep the list bounded when tokens rotate: the newest few are the ones a log line can still quote.
      if (secrets.length > 8) secrets.splice(0, secrets.length - 8);
      return { value };
    },
  };
}

/**
 * The kafkajs transport: one `Kafka` client; consumers, producers and admins are created from it.
 *
 * @example
 * const transport = new KafkaTransport({ brokers: ['127.0.0.1:9092'], clientId: 'order-emailer', logger: log.child({ component: 'kafkajs' }) });
 */
export class KafkaTransport implements Transport {
  readonly name = 'kafka';
  /** The kafkajs client, for what the transport does not cover. */
  readonly kafka: Kafka;
  readonly #cluster: Cluster;
  readonly #maxConsumerRestarts: number;
  readonly #fetchMaxWaitMs: number;

  constructor(options: KafkaTransportOptions) {
    if (options.brokers.length === 0) throw new StreamError('CONFIG_INVALID', 'kafka transport: `brokers` is empty (e.g. KAFKA_BROKERS=127.0.0.1:9092)');
    // The log bridge reads this array on every line: tokens are added as they are handed out.
    const secrets: string[] = [];
    const sasl = options.sasl ? saslOptions(options.sasl, secrets) : undefined;
    this.kafka = new Kafka({
      brokers: [...options.brokers],
      clientId: options.clientId,
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
      ...(sasl === undefined ? {} : { sasl }),
      ...(options.connectionTimeoutMs === undefined ? {} : { connectionTimeout: options.connectionTimeoutMs }),
      ...(options.requestTimeoutMs === undefined ? {} : { requestTimeout: options.requestTimeoutMs }),
      logLevel: KAFKAJS_LEVELS[options.logLevel ?? 'warn'],
      logCreator: createLogCreator(options.logger, secrets),
    });
    this.#cluster = new Cluster(this.kafka);
    this.#maxConsumerRestarts = options.maxConsumerRestarts ?? 5;
    this.#fetchMaxWaitMs = options.fetchMaxWaitMs ?? 100;
  }

  /** A group member consuming `options.topics`; see {@link TransportConsumer}. */
  consumer(options: ConsumerOptions): TransportConsumer {
    return new KafkaConsumer(this.#cluster, options, this.#maxConsumerRestarts, this.#fetchMaxWaitMs);
  }

  /** An idempotent producer; transactional when `options.transactionalId` is given. */
  producer(options: ProducerOptions = {}): TransportProducer {
    return new KafkaProducer(this.#cluster, options);
  }

  /** Reads one partition, committed records only, outside any group (see {@link readKafkaPartition}). */
  readPartition(options: ReadPartitionOptions): Promise<void> {
    return readKafkaPartition(this.#cluster, options);
  }

  /** An admin client for topics and offsets. */
  admin(): TransportAdmin {
    return new KafkaAdmin(this.#cluster);
  }
}
