import type { Admin, BaseOptions } from '@platformatic/kafka';
import { platformatic } from './client.js';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { KnownTopics } from '../shared.js';

/** What every @platformatic/kafka client of one transport is created with: brokers, client id, TLS, SASL, timeouts. */
export type ClientOptions = Pick<BaseOptions, 'clientId' | 'bootstrapBrokers' | 'connectTimeout' | 'requestTimeout' | 'sasl'> & { tls?: TlsOptions };

/** What consumers, producers and admins of one transport share: the client options and the topics seen to exist. */
export class Cluster {
  readonly options: ClientOptions;
  readonly #knownTopics = new KnownTopics();

  constructor(options: ClientOptions) {
    this.options = options;
  }

  /** The subset of `topics` that does not exist (see {@link KnownTopics}), asked through `admin` when given. */
  missingTopics(topics: readonly string[], admin?: Admin): Promise<string[]> {
    return this.#knownTopics.missing(topics, () => (admin ? admin.listTopics() : this.#listTopics()));
  }

  async #listTopics(): Promise<string[]> {
    const admin = new (platformatic().Admin)({ ...this.options, clientId: `${this.options.clientId}-topics` });
    try {
      return await admin.listTopics();
    } finally {
      await admin.close().catch(() => undefined);
    }
  }
}
