/**
 * The broker's topics: append-only partitions, routing of produced messages to partitions, and the
 * offsets that address them.
 */
import { StreamError } from '../../errors.js';
import { emptyRawHeaders, type OutgoingMessage, type PartitionOffset, type RawHeaders, type RawMessage } from '../transport.js';
import type { FaultHooks } from './faults.js';
import { keyPartition } from './partitioner.js';

/** A message as the memory broker stores it: what a consumer fetches, plus where it lives. */
export interface StoredMessage extends RawMessage {
  readonly topic: string;
  readonly partition: number;
}

/** A message with the partition it was routed to, its bytes copied so the caller may reuse its buffers. */
export interface RoutedMessage extends OutgoingMessage {
  readonly partition: number;
}

/** One topic: its partitions' messages in offset order. */
export interface TopicLog {
  readonly partitions: StoredMessage[][];
  /** Next partition for a message without key or partition. */
  roundRobin: number;
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** Parses an offset the way the broker accepts it: a decimal string of a non-negative safe integer. */
export function parseOffset(offset: string, where: string): number {
  const value = /^\d+$/.test(offset) ? Number(offset) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    throw new StreamError('STATE_INVALID', `${where}: offset ${JSON.stringify(offset)} is not a non-negative integer string`);
  }
  return value;
}

function copyHeaders(headers: RawHeaders): RawHeaders {
  const out = emptyRawHeaders();
  for (const [name, value] of Object.entries(headers)) out[name] = value === null ? null : Buffer.from(value);
  return out;
}

/** The topics of one broker; appending tells the listeners (the consumers' fetch loops). */
export class TopicLogs {
  readonly #topics = new Map<string, TopicLog>();
  readonly #appendListeners = new Set<(topic: string) => void>();
  readonly #faults: FaultHooks;

  constructor(faults: FaultHooks) {
    this.#faults = faults;
  }

  createTopic(name: string, partitions: number): boolean {
    if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
      throw new StreamError('CONFIG_INVALID', `invalid topic name ${JSON.stringify(name)}: use 1-249 of [A-Za-z0-9._-]`);
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new StreamError('CONFIG_INVALID', `topic ${name}: partitions must be a positive integer, got ${partitions}`, { context: { topic: name } });
    }
    if (this.#topics.has(name)) return false;
    this.#topics.set(name, { partitions: Array.from({ length: partitions }, () => []), roundRobin: 0 });
    return true;
  }

  topicNames(): string[] {
    return [...this.#topics.keys()].sort();
  }

  topic(name: string): TopicLog {
    const topic = this.#topics.get(name);
    if (!topic) {
      throw new StreamError('TOPIC_MISSING', `topic ${name} does not exist (auto-create is off): create it first`, { context: { topic: name } });
    }
    return topic;
  }

  log(topic: string, partition: number): StoredMessage[] {
    const partitions = this.topic(topic).partitions;
    const log = partitions[partition];
    if (!log) {
      throw new StreamError('TOPIC_MISSING', `partition ${partition} of topic ${topic} does not exist (it has ${partitions.length})`, {
        context: { topic, partition },
      });
    }
    return log;
  }

  endOffsets(topic: string): PartitionOffset[] {
    return this.topic(topic).partitions.map((log, partition) => ({ topic, partition, offset: String(log.length) }));
  }

  /** Validates messages and picks their partitions, without appending anything. */
  route(messages: readonly OutgoingMessage[]): RoutedMessage[] {
    return messages.map((message) => {
      const topic = this.topic(message.topic);
      let partition: number;
      if (message.partition !== undefined) {
        partition = message.partition;
        this.log(message.topic, partition);
      } else if (message.key !== null) {
        partition = keyPartition(message.key, topic.partitions.length);
      } else {
        partition = topic.roundRobin;
        topic.roundRobin = (topic.roundRobin + 1) % topic.partitions.length;
      }
      return {
        topic: message.topic,
        partition,
        key: message.key === null ? null : Buffer.from(message.key),
        value: message.value === null ? null : Buffer.from(message.value),
        headers: copyHeaders(message.headers),
      };
    });
  }

  /** A plain send: routed, offered to the `send` fault hooks, then appended. */
  produce(messages: readonly OutgoingMessage[]): void {
    const routed = this.route(messages);
    this.#faults.run({ point: 'send', messages: routed });
    this.append(routed);
  }

  /** Appends routed messages without running fault hooks (a transaction commit ran its own). */
  append(messages: readonly RoutedMessage[]): void {
    if (messages.length === 0) return;
    const timestamp = String(Date.now());
    const topics = new Set<string>();
    for (const message of messages) {
      const log = this.log(message.topic, message.partition);
      log.push({ ...message, offset: String(log.length), timestamp });
      topics.add(message.topic);
    }
    for (const topic of topics) for (const listener of [...this.#appendListeners]) listener(topic);
  }

  /** Calls `listener` with the topic after every append to it; returns a function that removes it. */
  onAppend(listener: (topic: string) => void): () => void {
    this.#appendListeners.add(listener);
    return () => this.#appendListeners.delete(listener);
  }
}
