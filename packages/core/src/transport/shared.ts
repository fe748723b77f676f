/**
 * Topic-partition helpers both transports and the runtime need: one definition, so a partition is keyed,
 * named and ordered the same everywhere.
 */
import type { TopicPartition } from './transport.js';

/** A map key for one partition of a topic; NUL cannot occur in a topic name, so keys never collide. */
export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** A partition as people read it in messages: `orders/2`. */
export const tpName = (tp: TopicPartition): string => `${tp.topic}/${tp.partition}`;

/** Sort order of partitions: by topic name, then partition number. */
export const byTopicPartition = (a: TopicPartition, b: TopicPartition): number => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition);
