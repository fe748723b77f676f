/** Conversions between the transport's shapes and @platformatic/kafka's (messages, headers, record batches). */
import type { KafkaRecord, MessageToProduce } from '@platformatic/kafka';
import { emptyRawHeaders, type OutgoingMessage, type RawHeaders } from '../transport.js';

/**
 * A message to produce. Headers go as a Map so that a header named `__proto__` is an ordinary entry; a
 * null value is written as Kafka's "no value" (length -1), as the client writes an absent buffer.
 * Key and value null are left out: the client writes a missing key or value as null.
 */
export function toMessageToProduce(m: OutgoingMessage): MessageToProduce {
  const headers = new Map<Buffer, Buffer>();
  for (const name of Object.keys(m.headers)) headers.set(Buffer.from(name), m.headers[name] as Buffer);
  return {
    topic: m.topic,
    ...(m.key === null ? {} : { key: m.key }),
    ...(m.value === null ? {} : { value: m.value }),
    headers,
    ...(m.partition === undefined ? {} : { partition: m.partition }),
  };
}

/** A fetched record's headers: prototype-free, the last value of a repeated name, null for no value. */
export function toRawHeaders(headers: KafkaRecord['headers']): RawHeaders {
  const out = emptyRawHeaders();
  for (const [name, value] of headers) out[name === null ? '' : name.toString()] = value;
  return out;
}
