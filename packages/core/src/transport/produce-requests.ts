import type { OutgoingMessage } from './transport.js';

/**
 * Bytes of records sent in one produce request at most (the last record may take a request past it alone).
 * kafkajs writes all records of one partition in a request as one record batch, and the broker refuses a
 * batch above `message.max.bytes` (1 MiB by default) with MESSAGE_TOO_LARGE: two dead letters of about
 * 1 MB each for one partition would fail together forever, and under exactly-once stall their partition.
 */
export const MAX_REQUEST_RECORD_BYTES = 512 * 1024;

function sizeOf(message: OutgoingMessage): number {
  let size = (message.key?.length ?? 0) + (message.value?.length ?? 0) + 64;
  for (const name in message.headers) size += name.length + (message.headers[name]?.length ?? 0) + 8;
  return size;
}

/**
 * Splits messages, in order, into groups of at most `maxBytes` each (a larger message makes a group of its
 * own), so that no partition's record batch can exceed what the broker accepts. One group (the usual case)
 * is the input itself.
 *
 * @example for (const group of produceRequests(messages)) await producer.sendBatch({ topicMessages: topicMessages(group) });
 */
export function produceRequests(messages: readonly OutgoingMessage[], maxBytes: number = MAX_REQUEST_RECORD_BYTES): (readonly OutgoingMessage[])[] {
  const groups: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = sizeOf(message);
    if (current.length > 0 && bytes + size > maxBytes) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) groups.push(current);
  return groups.length === 1 ? [messages] : groups;
}
