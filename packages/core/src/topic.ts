import { stringCodec, jsonCodec, type Codec } from './codec.js';
import { DecodeError, EncodeError, StreamError } from './errors.js';
import type { Headers, OutgoingRecord } from './record.js';
import { validate, type InputOf, type OutputOf, type Schema } from './schema.js';
import { emptyRawHeaders, NO_RAW_HEADERS, rawHeaderBytes, type OutgoingMessage, type RawHeaders, type RawMessage } from './transport/transport.js';

/** Anything records can be sent through: an app, or a handler's context (inside its transaction). */
export interface RecordSender {
  send<KIn, KOut, VIn, VOut>(topic: Topic<KIn, KOut, VIn, VOut>, record: OutgoingRecord<KIn, VIn>): Promise<void>;
}

/** How a topic is declared. */
export interface TopicOptions<VS extends Schema, KS extends Schema | undefined> {
  /** The Kafka topic name. */
  readonly name: string;
  /** Schema of the value: gives the static type and the runtime check. */
  readonly value: VS;
  /** Schema of the key (keys are UTF-8 strings on the wire unless `keyCodec` says otherwise). */
  readonly key?: KS;
  /** Value codec; JSON by default. */
  readonly codec?: Codec;
  /** Key codec; UTF-8 string by default. */
  readonly keyCodec?: Codec;
  /** Partition count used when the topic is created from its definition. */
  readonly partitions?: number;
  /** Retention used when the topic is created (`retention.ms`). */
  readonly retentionMs?: number;
  /** Further topic configuration used when the topic is created. */
  readonly config?: Readonly<Record<string, string>>;
}

type KeyIn<KS> = KS extends Schema ? InputOf<KS> : string | null;
type KeyOut<KS> = KS extends Schema ? OutputOf<KS> : string | null;

/** A decoded record's key and value, before the runtime adds where it came from. */
export interface Decoded<K, V> {
  readonly key: K;
  readonly value: V;
  readonly headers: Headers;
}

/** Shared by every record without headers (most): frozen, so nobody can add to it by accident. */
const NO_HEADERS: Headers = Object.freeze(Object.create(null) as Headers);

/** Resolved {@link HeaderLimits}. */
export interface ResolvedHeaderLimits {
  readonly maxHeaders: number;
  readonly maxBytes: number;
}

export const DEFAULT_HEADER_LIMITS: ResolvedHeaderLimits = { maxHeaders: 1000, maxBytes: 64 * 1024 };

/** Throws a {@link DecodeError} (the record is dead-lettered at once) when `headers` exceed `limits`. */
export function checkHeaderLimits(topic: string, headers: RawHeaders, limits: ResolvedHeaderLimits, context: { partition: number; offset: string }): void {
  let count = 0;
  for (const _ in headers) count += 1;
  if (count > limits.maxHeaders) throw new DecodeError(topic, 'headers', `${count} headers, over the limit of ${limits.maxHeaders}`, context);
  const bytes = rawHeaderBytes(headers);
  if (bytes > limits.maxBytes) throw new DecodeError(topic, 'headers', `${bytes} bytes of headers, over the limit of ${limits.maxBytes}`, context);
}

/**
 * Headers as a handler sees them: UTF-8 text (invalid bytes become U+FFFD), in an object without a
 * prototype (a header may be named `__proto__`). A header without a value (null) is left out here; the
 * dead letter of the record still carries it.
 */
export function decodeHeaders(raw: RawHeaders): Headers {
  let out: Record<string, string> | undefined;
  for (const name in raw) {
    const value = raw[name];
    if (value !== null && value !== undefined) (out ??= Object.create(null) as Record<string, string>)[name] = value.toString('utf8');
  }
  return out ?? NO_HEADERS;
}

export function encodeHeaders(headers: Headers | undefined): RawHeaders {
  let out: Record<string, Buffer | null> | undefined;
  if (headers) for (const name of Object.keys(headers)) (out ??= emptyRawHeaders())[name] = Buffer.from(headers[name]!, 'utf8');
  return out ?? NO_RAW_HEADERS;
}

/**
 * A typed Kafka topic: its name, the schemas of key and value, and their codecs. Create with
 * {@link defineTopic}. `KIn`/`VIn` are what you send, `KOut`/`VOut` what handlers receive.
 */
export class Topic<KIn, KOut, VIn, VOut> {
  readonly name: string;
  readonly partitions: number | undefined;
  readonly retentionMs: number | undefined;
  readonly config: Readonly<Record<string, string>>;
  readonly #value: Schema;
  readonly #key: Schema | undefined;
  readonly #codec: Codec;
  readonly #keyCodec: Codec;

  /** @internal use {@link defineTopic} */
  constructor(options: TopicOptions<Schema, Schema | undefined>) {
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(options.name)) {
      throw new StreamError('CONFIG_INVALID', `invalid topic name ${JSON.stringify(options.name)}: use 1-249 of [A-Za-z0-9._-]`);
    }
    this.name = options.name;
    this.partitions = options.partitions;
    this.retentionMs = options.retentionMs;
    this.config = options.config ?? {};
    this.#value = options.value;
    this.#key = options.key;
    this.#codec = options.codec ?? jsonCodec;
    this.#keyCodec = options.keyCodec ?? stringCodec;
  }

  /**
   * Validates and encodes a record for sending. Throws {@link SchemaValidationError} naming the topic
   * and the bad field before anything reaches the broker.
   */
  async encode(record: OutgoingRecord<KIn, VIn>): Promise<OutgoingMessage> {
    return this.encodeNow(record);
  }

  /**
   * @internal {@link encode} without the Promise when the schemas validate synchronously (the common case,
   * and the send path of every handler): throws instead of rejecting.
   */
  encodeNow(record: OutgoingRecord<KIn, VIn>): OutgoingMessage | Promise<OutgoingMessage> {
    const value = validate(this.#value, record.value, this.name, 'value');
    const key = this.#key ? validate(this.#key, record.key, this.name, 'key') : record.key;
    if (value instanceof Promise || key instanceof Promise) {
      return Promise.all([key, value]).then(([k, v]) => this.#message(record, k, v));
    }
    return this.#message(record, key, value);
  }

  #message(record: OutgoingRecord<KIn, VIn>, k: unknown, value: unknown): OutgoingMessage {
    let key: Buffer | null = null;
    if (this.#key) {
      key = k === null || k === undefined ? null : this.#encodeWith(this.#keyCodec, k, 'key');
    } else if (k !== undefined && k !== null) {
      if (typeof k !== 'string') {
        throw new EncodeError(this.name, 'key', new TypeError('a topic without a key schema takes string keys'));
      }
      key = Buffer.from(k, 'utf8');
    }
    const message: { -readonly [F in keyof OutgoingMessage]: OutgoingMessage[F] } = {
      topic: this.name,
      key,
      value: value === null || value === undefined ? null : this.#encodeWith(this.#codec, value, 'value'),
      headers: encodeHeaders(record.headers),
    };
    if (record.partition !== undefined) message.partition = record.partition;
    return message;
  }

  #encodeWith(codec: Codec, value: unknown, part: 'key' | 'value'): Buffer {
    try {
      return codec.encode(value);
    } catch (error) {
      throw new EncodeError(this.name, part, error);
    }
  }

  /**
   * Decodes and validates a consumed message. Throws {@link DecodeError} or {@link SchemaValidationError};
   * both are non-retryable and send the record to the dead-letter topic.
   */
  decode(message: RawMessage, context: { partition: number }): Decoded<KOut, VOut> | Promise<Decoded<KOut, VOut>> {
    const where = { partition: context.partition, offset: message.offset };
    let rawValue: unknown = null;
    if (message.value !== null) {
      try {
        rawValue = this.#codec.decode(message.value);
      } catch (error) {
        throw new DecodeError(this.name, 'value', error, where);
      }
    }
    let rawKey: unknown = null;
    if (message.key !== null) {
      try {
        rawKey = this.#keyCodec.decode(message.key);
      } catch (error) {
        throw new DecodeError(this.name, 'key', error, where);
      }
    }
    const headers = decodeHeaders(message.headers);
    const value = validate(this.#value, rawValue, this.name, 'value', where);
    const key = this.#key ? validate(this.#key, rawKey, this.name, 'key', where) : rawKey;
    if (value instanceof Promise || key instanceof Promise) {
      return Promise.all([key, value]).then(([k, v]) => ({ key: k as KOut, value: v as VOut, headers }));
    }
    return { key: key as KOut, value: value as VOut, headers };
  }

  /**
   * Sends one record through an app (or, inside a handler, through `ctx` so it joins the handler's
   * transaction when exactly-once is on).
   *
   * @example await orders.send(app, { key: order.id, value: order });
   */
  send(sender: RecordSender, record: OutgoingRecord<KIn, VIn>): Promise<void> {
    return sender.send(this, record);
  }

  /**
   * @internal validates a key synchronously and encodes it as {@link encode} would (null for a null key): a
   * global table over this topic looks keys up by these bytes.
   */
  encodeKeyNow(key: KIn): Buffer | null {
    const validated = this.#key ? validate(this.#key, key, this.name, 'key') : key;
    if (validated instanceof Promise) {
      throw new StreamError('CONFIG_INVALID', `topic ${this.name}: its key schema validates asynchronously; a global table needs a synchronous one`);
    }
    return validated === null || validated === undefined ? null : this.#encodeWith(this.#keyCodec, validated, 'key');
  }

  /** @internal a stable description for errors and logs */
  toString(): string {
    return `Topic(${this.name})`;
  }
}

/** Any topic, whatever its types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- variance: a Topic of any key/value types
export type AnyTopic = Topic<any, any, any, any>;
/** The key type handlers receive from a topic. */
export type KeyOf<T> = T extends Topic<unknown, infer K, unknown, unknown> ? K : never;
/** The value type handlers receive from a topic. */
export type ValueOf<T> = T extends Topic<unknown, unknown, unknown, infer V> ? V : never;

/**
 * Declares a typed topic. One declaration gives the static types and the runtime checks, so a change of
 * shape is a compile error wherever the topic is used.
 *
 * @example
 * export const orders = defineTopic({ name: 'orders', key: z.string(), value: Order, partitions: 6 });
 */
export function defineTopic<VS extends Schema, KS extends Schema | undefined = undefined>(
  options: TopicOptions<VS, KS>,
): Topic<KeyIn<KS>, KeyOut<KS>, InputOf<VS>, OutputOf<VS>> {
  return new Topic(options);
}
