/**
 * Topic-partition helpers both transports and the runtime need: one definition, so a partition is keyed,
 * named and ordered the same everywhere.
 */
import type { TopicPartition } from './transport.js';

/** A map key for one partition of a topic; NUL cannot occur in a topic name, so keys never collide. */
export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** A partition as people read it in messages: `orders/2`. */
export const tpName = (tp: TopicPartition): string => `${tp.topic}/${tp.partition}`;

/**
 * An error and its causes, breadth first: `cause`, and every entry of `errors` (an AggregateError, kafkajs'
 * KafkaJSAggregateError, @platformatic/kafka's MultipleErrors). Each object once; at most `limit` of them.
 */
export function* errorChain(error: unknown, limit: number): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0 && seen.size < limit) {
    const current = pending.shift();
    if (current === null || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    const record = current as Record<string, unknown>;
    yield record;
    pending.push(record.cause);
    if (Array.isArray(record.errors)) pending.push(...(record.errors as unknown[]));
  }
}

/**
 * The topics seen to exist, per transport. A metadata request for a missing topic makes the Kafka clients
 * retry UNKNOWN_TOPIC_OR_PARTITION (kafkajs' idempotent producer: forever), so a missing topic is told from
 * the topic list instead. Each topic is checked until it is seen once: a topic deleted later is not noticed.
 */
export class KnownTopics {
  readonly #known = new Set<string>();

  /** The subset of `topics` that does not exist; `list` gives the broker's topics when one is not known yet. */
  async missing(topics: readonly string[], list: () => Promise<string[]>): Promise<string[]> {
    const unknown = [...new Set(topics)].filter((t) => !this.#known.has(t));
    if (unknown.length === 0) return [];
    const existing = new Set(await list());
    for (const t of unknown) if (existing.has(t)) this.#known.add(t);
    return unknown.filter((t) => !existing.has(t));
  }
}

/** Sort order of partitions: by topic name, then partition number. */
export const byTopicPartition = (a: TopicPartition, b: TopicPartition): number => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition);
