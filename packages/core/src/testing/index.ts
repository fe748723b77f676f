import { App, type AppOptions } from '../app.js';
import { StreamError } from '../errors.js';
import { silentLogger } from '../logger.js';
import type { Headers, OutgoingRecord } from '../record.js';
import { DEAD_LETTER_HEADERS } from '../runtime/dead-letter.js';
import { deadLetterTopicName } from '../topology.js';
import { decodeHeaders, type AnyTopic, type KeyOf, type Topic, type ValueOf } from '../topic.js';
import { MemoryBroker, MemoryTransport } from '../transport/memory/index.js';
import { emptyRawHeaders, type RawHeaders } from '../transport/transport.js';

/** A dead letter as a test reads it: the original bytes and the failure headers. */
export interface DeadLetter {
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Headers;
  readonly sourceTopic: string;
  readonly sourcePartition: number;
  readonly sourceOffset: string;
  readonly errorClass: string;
  readonly errorMessage: string;
  readonly attempts: number;
}

/** A record read back from a topic in a test. */
export interface ProducedRecord<K, V> {
  readonly partition: number;
  readonly offset: string;
  readonly key: K;
  readonly value: V;
  readonly headers: Headers;
}

/**
 * An app on the in-memory transport with helpers to feed it and look at what it did. The runtime is the
 * production one: commit tracking, retries, dead letters and concurrency behave exactly as on Kafka.
 */
export class TestHarness {
  readonly app: App;
  readonly broker: MemoryBroker;
  readonly #groupId: string;

  constructor(app: App, broker: MemoryBroker, groupId: string) {
    this.app = app;
    this.broker = broker;
    this.#groupId = groupId;
  }

  /** Sends records through the app (validated like production sends). */
  async send<KIn, KOut, VIn, VOut>(topic: Topic<KIn, KOut, VIn, VOut>, ...records: OutgoingRecord<KIn, VIn>[]): Promise<void> {
    for (const record of records) await this.app.send(topic, record);
  }

  /** Writes raw bytes to a topic, bypassing validation: for malformed-input tests. */
  async sendRaw(
    topic: string,
    record: { key?: string | null; value: string | Buffer | null; headers?: Headers; rawHeaders?: RawHeaders; partition?: number },
  ): Promise<void> {
    const producer = this.app.transport.producer();
    await producer.connect();
    const headers = emptyRawHeaders();
    for (const [k, v] of Object.entries(record.headers ?? {})) headers[k] = Buffer.from(v);
    for (const [k, v] of Object.entries(record.rawHeaders ?? {})) headers[k] = v;
    await producer.send([
      {
        topic,
        key: record.key == null ? null : Buffer.from(record.key),
        value: record.value === null ? null : Buffer.isBuffer(record.value) ? record.value : Buffer.from(record.value),
        headers,
        ...(record.partition === undefined ? {} : { partition: record.partition }),
      },
    ]);
    await producer.disconnect();
  }

  /**
   * Waits until every record on the agents' topics was processed or dead-lettered and committed.
   * Fails after `timeoutMs` naming the partitions still behind.
   */
  async settle(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const topics = [...new Set(this.app.health().agents.map((a) => a.source))];
    for (;;) {
      const behind: string[] = [];
      for (const topic of topics) {
        const committed = new Map(
          this.broker
            .committed(this.#groupId)
            .filter((c) => c.topic === topic)
            .map((c) => [c.partition, Number(c.offset)]),
        );
        for (const end of this.broker.endOffsets(topic)) {
          const at = committed.get(end.partition) ?? 0;
          if (at < Number(end.offset)) behind.push(`${topic}/${end.partition} committed ${at} of ${end.offset}`);
        }
      }
      if (behind.length === 0 && this.app.health().agents.every((a) => a.inFlight === 0)) return;
      if (Date.now() > deadline) throw new StreamError('STATE_INVALID', `not settled after ${timeoutMs} ms: ${behind.join(', ') || 'records in flight'}`);
      await this.app.commitNow();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** The records on a topic, decoded with the topic's codecs and schemas. */
  async produced<T extends AnyTopic>(topic: T): Promise<ProducedRecord<KeyOf<T>, ValueOf<T>>[]> {
    const out: ProducedRecord<KeyOf<T>, ValueOf<T>>[] = [];
    for (const m of this.broker.messages(topic.name)) {
      const decoded = await topic.decode(m, { partition: m.partition });
      out.push({ partition: m.partition, offset: m.offset, key: decoded.key as KeyOf<T>, value: decoded.value as ValueOf<T>, headers: decoded.headers });
    }
    return out;
  }

  /** Dead letters of a source topic (on `<topic>.dlq` unless another name is given). */
  deadLetters(topic: AnyTopic | string, deadLetterTopic?: string): DeadLetter[] {
    const name = deadLetterTopic ?? deadLetterTopicName(typeof topic === 'string' ? topic : topic.name);
    const h = DEAD_LETTER_HEADERS;
    return this.broker.messages(name).map((m) => {
      const headers = decodeHeaders(m.headers);
      return {
        key: m.key?.toString() ?? null,
        value: m.value?.toString() ?? null,
        headers,
        sourceTopic: headers[h.sourceTopic] ?? '',
        sourcePartition: Number(headers[h.partition]),
        sourceOffset: headers[h.offset] ?? '',
        errorClass: headers[h.errorClass] ?? '',
        errorMessage: headers[h.errorMessage] ?? '',
        attempts: Number(headers[h.attempts]),
      };
    });
  }

  /** Committed offsets of the app's group for a topic, by partition. */
  committed(topic: AnyTopic | string): Map<number, number> {
    const name = typeof topic === 'string' ? topic : topic.name;
    return new Map(
      this.broker
        .committed(this.#groupId)
        .filter((c) => c.topic === name)
        .map((c) => [c.partition, Number(c.offset)]),
    );
  }

  stop(): ReturnType<App['stop']> {
    return this.app.stop();
  }
}

/**
 * Options of {@link createTestApp}: app options without the transport, plus a broker to share, and
 * `groupMetadata` to run exactly-once as on the platformatic transport (one transactional producer per
 * consumer, offsets checked against the group's generation; see `MemoryTransportOptions.groupMetadata`).
 */
export type TestAppOptions = Partial<Omit<AppOptions, 'transport' | 'brokers'>> & { readonly broker?: MemoryBroker; readonly groupMetadata?: boolean };

/**
 * Creates and starts an app on the in-memory transport. Topics are created from their definitions,
 * commits happen every 10 ms and logs are silent unless a logger is given.
 *
 * @example
 * const h = await createTestApp({ id: 'emailer' }, (app) => app.agent(orders, handler));
 * await h.send(orders, { key: 'o-1', value: order });
 * await h.settle();
 * expect(h.committed(orders).get(0)).toBe(1);
 */
export async function createTestApp(options: TestAppOptions, setup: (app: App) => void): Promise<TestHarness> {
  const broker = options.broker ?? new MemoryBroker();
  const id = options.id ?? 'test-app';
  const { broker: _shared, groupMetadata = false, ...appOptions } = options;
  const app = new App({
    commitIntervalMs: 10,
    shutdownTimeoutMs: 2000,
    createTopics: true,
    logger: silentLogger(),
    ...appOptions,
    id,
    transport: new MemoryTransport(broker, { groupMetadata }),
  });
  setup(app);
  await app.start();
  return new TestHarness(app, broker, options.groupId ?? id);
}

export { MemoryBroker, MemoryTransport };
