/** Record headers as UTF-8 strings. */
export type Headers = Readonly<Record<string, string>>;

/** A record as a handler sees it: decoded, validated, with where it came from. */
export interface StreamRecord<K, V> {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offsets are 64-bit; kept as a decimal string like kafkajs does. */
  readonly offset: string;
  readonly key: K;
  readonly value: V;
  readonly headers: Headers;
  readonly timestamp: Date;
}

/** A record to send: the key and value are checked against the topic's schemas before anything is sent. */
export interface OutgoingRecord<K, V> {
  readonly key?: K;
  readonly value: V;
  readonly headers?: Headers;
  /** Explicit partition; by default the producer's partitioner picks one from the key. */
  readonly partition?: number;
}
