/** Conversions between the transport's shapes and kafkajs' (messages, headers, per-topic request lists). */
import type { IHeaders, KafkaMessage, Message, TopicMessages } from 'kafkajs';
import {
  emptyRawHeaders,
  NO_RAW_HEADERS,
  type OutgoingMessage,
  type PartitionOffset,
  type RawHeaders,
  type RawMessage,
  type TopicPartition,
} from '../transport.js';

function toBuffer(value: Buffer | string | null): Buffer | null {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

/**
 * kafkajs headers may be strings, arrays (a repeated header name), null (a header without a value; its
 * types leave that out) or undefined: we keep the last value, in a prototype-free object.
 */
function toRawHeaders(headers: IHeaders | undefined): RawHeaders {
  if (!headers || !hasKey(headers)) return NO_RAW_HEADERS;
  const out = emptyRawHeaders();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      const last = value[value.length - 1];
      if (last !== undefined) out[name] = toBuffer(last);
    } else {
      out[name] = toBuffer(value);
    }
  }
  return out;
}

/** Whether `object` has any enumerable key: without building the array Object.keys would. */
function hasKey(object: object): boolean {
  for (const _ in object) return true;
  return false;
}

/** A fetched kafkajs message as the runtime sees it. */
export function toRawMessage(message: KafkaMessage): RawMessage {
  return {
    key: message.key,
    value: message.value,
    headers: toRawHeaders(message.headers),
    offset: message.offset,
    timestamp: message.timestamp,
  };
}

/** Partitions per topic, each once: the shape kafkajs' pause and resume take. */
export function groupByTopic(partitions: readonly TopicPartition[]): { topic: string; partitions: number[] }[] {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of partitions) {
    const list = byTopic.get(topic) ?? [];
    if (!list.includes(partition)) list.push(partition);
    byTopic.set(topic, list);
  }
  return [...byTopic].map(([topic, list]) => ({ topic, partitions: list }));
}

/** One produce request's messages per topic: the shape of kafkajs' sendBatch. */
export function topicMessages(messages: readonly OutgoingMessage[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const m of messages) {
    const list = byTopic.get(m.topic) ?? [];
    // kafkajs' types leave out null header values; it writes them as Kafka's "no value" (patches/kafkajs@2.2.4.patch).
    const message: Message = { key: m.key, value: m.value, headers: { ...m.headers } as IHeaders };
    if (m.partition !== undefined) message.partition = m.partition;
    list.push(message);
    byTopic.set(m.topic, list);
  }
  return [...byTopic].map(([topic, list]) => ({ topic, messages: list }));
}

/** Offsets per topic: the shape of kafkajs' transactional sendOffsets. */
export function groupByTopicOffsets(offsets: readonly PartitionOffset[]): { topic: string; partitions: { partition: number; offset: string }[] }[] {
  const byTopic = new Map<string, { partition: number; offset: string }[]>();
  for (const o of offsets) {
    const list = byTopic.get(o.topic) ?? [];
    list.push({ partition: o.partition, offset: o.offset });
    byTopic.set(o.topic, list);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}
