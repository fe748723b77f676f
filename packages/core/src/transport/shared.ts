/**
 * Topic-partition helpers both transports and the runtime need: one definition, so a partition is keyed,
 * named and ordered the same everywhere.
 */
import { StreamError } from '../errors.js';
import { MAX_MEMBER_INFO_BYTES, type GroupDescription, type TopicPartition } from './transport.js';

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

/**
 * The bytes of a consumer's `ConsumerOptions.memberInfo` for its subscription metadata's userData, or
 * undefined when it has none. More than {@link MAX_MEMBER_INFO_BYTES} is CONFIG_INVALID: it travels in every
 * JoinGroup, and the leader gets every member's.
 */
export function memberInfoBytes(groupId: string, info: string | undefined): Buffer | undefined {
  if (info === undefined || info.length === 0) return undefined;
  const bytes = Buffer.from(info, 'utf8');
  if (bytes.length > MAX_MEMBER_INFO_BYTES) {
    throw new StreamError(
      'CONFIG_INVALID',
      `consumer of group ${groupId}: memberInfo has ${bytes.length} bytes, at most ${MAX_MEMBER_INFO_BYTES} are allowed`,
      {
        context: { groupId },
      },
    );
  }
  return bytes;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A member's userData as the text it published, or undefined: none, empty, or not UTF-8 (another client's
 * assignor data, e.g. the cooperative-sticky generation).
 */
export function memberInfoText(userData: Uint8Array | null | undefined): string | undefined {
  if (!userData || userData.length === 0 || userData.length > MAX_MEMBER_INFO_BYTES) return undefined;
  try {
    return strictUtf8.decode(userData);
  } catch {
    return undefined;
  }
}

/**
 * A group state as Kafka names it (DescribeGroups) in the transport's terms: assignments count only once the
 * group is Stable; Empty and Dead (an unknown group) have no members; every other state is a rebalance.
 */
export function groupStateOf(kafkaState: string): GroupDescription['state'] {
  const state = kafkaState.replace(/[_\s]/g, '').toLowerCase();
  if (state === 'stable') return 'stable';
  if (state === 'empty' || state === 'dead') return 'empty';
  return 'rebalancing';
}
