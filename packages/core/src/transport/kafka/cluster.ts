import type { Admin, Kafka } from 'kafkajs';

/**
 * What consumers, producers and admins of one transport share: the kafkajs client and the topics seen
 * to exist.
 */
export class Cluster {
  readonly kafka: Kafka;
  /** Topics seen to exist: checked once per topic, so a topic deleted later is not noticed here. */
  readonly #knownTopics = new Set<string>();

  constructor(kafka: Kafka) {
    this.kafka = kafka;
  }

  /**
   * The subset of `topics` that does not exist. A metadata request for a missing topic makes kafkajs retry
   * UNKNOWN_TOPIC_OR_PARTITION (for an idempotent producer: forever), so we ask for the topic list instead.
   */
  async missingTopics(topics: readonly string[], admin?: Admin): Promise<string[]> {
    const unknown = [...new Set(topics)].filter((t) => !this.#knownTopics.has(t));
    if (unknown.length === 0) return [];
    const existing = new Set(admin ? await admin.listTopics() : await this.#listTopics());
    for (const t of unknown) if (existing.has(t)) this.#knownTopics.add(t);
    return unknown.filter((t) => !existing.has(t));
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
