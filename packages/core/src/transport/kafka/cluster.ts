import type { Admin, Kafka } from 'kafkajs';
import { KnownTopics } from '../shared.js';

/**
 * What consumers, producers and admins of one transport share: the kafkajs client and the topics seen
 * to exist.
 */
export class Cluster {
  readonly kafka: Kafka;
  readonly #knownTopics = new KnownTopics();

  constructor(kafka: Kafka) {
    this.kafka = kafka;
  }

  /** The subset of `topics` that does not exist (see {@link KnownTopics}), asked through `admin` when given. */
  missingTopics(topics: readonly string[], admin?: Admin): Promise<string[]> {
    return this.#knownTopics.missing(topics, () => (admin ? admin.listTopics() : this.#listTopics()));
  }

  /** Lists topics with a short-lived admin client, always disconnected again. */
  async #listTopics(): Promise<string[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      return await admin.listTopics();
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
