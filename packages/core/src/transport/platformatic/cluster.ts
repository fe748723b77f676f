import { Admin, type BaseOptions } from '@platformatic/kafka';
import type { ConnectionOptions as TlsOptions } from 'node:tls';

/** What every @platformatic/kafka client of one transport is created with: brokers, client id, TLS, SASL, timeouts. */
export type ClientOptions = Pick<BaseOptions, 'clientId' | 'bootstrapBrokers' | 'connectTimeout' | 'requestTimeout' | 'sasl'> & { tls?: TlsOptions };

/**
 * What consumers, producers and admins of one transport share: the client options and the topics seen
 * to exist. A metadata request for a missing topic is answered with UNKNOWN_TOPIC_OR_PARTITION, which the
 * clients retry; asking for the topic list instead tells a missing topic at once.
 */
export class Cluster {
  readonly options: ClientOptions;
  readonly #knownTopics = new Set<string>();

  constructor(options: ClientOptions) {
    this.options = options;
  }

  /** The subset of `topics` that does not exist (checked once per topic: a topic deleted later is not noticed here). */
  async missingTopics(topics: readonly string[], admin?: Admin): Promise<string[]> {
    const unknown = [...new Set(topics)].filter((t) => !this.#knownTopics.has(t));
    if (unknown.length === 0) return [];
    const existing = new Set(admin ? await admin.listTopics() : await this.#listTopics());
    for (const t of unknown) if (existing.has(t)) this.#knownTopics.add(t);
    return unknown.filter((t) => !existing.has(t));
  }

  async #listTopics(): Promise<string[]> {
    const admin = new Admin({ ...this.options, clientId: `${this.options.clientId}-topics` });
    try {
      return await admin.listTopics();
    } finally {
      await admin.close().catch(() => undefined);
    }
  }
}
