import { expect, it } from 'vitest';
import type {
  ConsumerOptions,
  OutgoingMessage,
  PartitionOffset,
  RawHeaders,
  TopicPartition,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
} from '../transport.js';
import { ConsumerProbe } from './consumer-probe.js';
import type { TransportFactory, TransportUnderTest } from './transport-under-test.js';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A started consumer and the probe that listens to it. */
export interface Member {
  readonly consumer: TransportConsumer;
  readonly probe: ConsumerProbe;
}

/** Optional parts of a record to produce. */
export interface RecordParts {
  readonly key?: Buffer | string | null;
  readonly partition?: number;
  readonly headers?: RawHeaders;
}

/**
 * One test's view of the transport under test: clients it makes are stopped when the test ends, waits
 * are bounded by the transport's patience, and records are built from short texts.
 */
export class ContractContext {
  readonly under: TransportUnderTest;
  readonly #cleanups: (() => Promise<unknown>)[] = [];
  #plain: Promise<TransportProducer> | undefined;

  constructor(under: TransportUnderTest) {
    this.under = under;
  }

  /** Runs `test` with a fresh context and always releases its clients and topics, newest first. */
  static async run(under: TransportUnderTest, test: (context: ContractContext) => Promise<void>): Promise<void> {
    const context = new ContractContext(under);
    try {
      await test(context);
    } finally {
      for (const cleanup of context.#cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
      await under.cleanup();
    }
  }

  topic(prefix: string, partitions: number): Promise<string> {
    return this.under.createTopic(`contract-${prefix}`, partitions);
  }

  name(prefix: string): string {
    return this.under.uniqueName(`contract-${prefix}`);
  }

  /**
   * Consumer options as the runtime passes them. Short heartbeats so that Kafka members notice a
   * rebalance quickly; read-committed as in exactly-once pipelines.
   */
  options(groupId: string, topics: readonly string[], overrides: Partial<ConsumerOptions> = {}): ConsumerOptions {
    return {
      groupId,
      topics,
      fromBeginning: true,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 300,
      rebalanceTimeoutMs: 10_000,
      readCommitted: true,
      maxBytesPerPartition: 1024 * 1024,
      ...overrides,
    };
  }

  /** A consumer that is stopped when the test ends; `prepare` sets up the probe before anything is delivered. */
  async member(
    groupId: string,
    topics: readonly string[],
    overrides: Partial<ConsumerOptions> = {},
    prepare: (member: Member) => void = () => undefined,
  ): Promise<Member> {
    const consumer = this.under.transport.consumer(this.options(groupId, topics, overrides));
    this.#cleanups.push(() => consumer.stop());
    const member = { consumer, probe: new ConsumerProbe() };
    prepare(member);
    await consumer.start(member.probe);
    return member;
  }

  async producer(transactionalId?: string): Promise<TransportProducer> {
    const producer = this.under.transport.producer(transactionalId === undefined ? {} : { transactionalId });
    this.#cleanups.push(() => producer.disconnect());
    await producer.connect();
    return producer;
  }

  async admin(): Promise<TransportAdmin> {
    const admin = this.under.transport.admin();
    this.#cleanups.push(() => admin.disconnect());
    await admin.connect();
    return admin;
  }

  /** Produces the records with a plain (non-transactional) producer of this test. */
  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#plain ??= this.producer();
    await (await this.#plain).send(messages);
  }

  /** Polls `condition` until it holds; fails naming `what` after the transport's patience. */
  async until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + this.under.patienceMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`${this.under.transport.name}: timed out after ${this.under.patienceMs} ms waiting for ${what}`);
      await delay(5);
    }
  }

  /** Polls the group's committed offsets of `topic` until they equal `expected` (transactional offsets land a moment after commit). */
  async committedOffsetsBecome(admin: TransportAdmin, groupId: string, topic: string, expected: readonly PartitionOffset[]): Promise<void> {
    let last: PartitionOffset[] = [];
    try {
      await this.until(
        async () => {
          last = await admin.committedOffsets(groupId, topic);
          return JSON.stringify(last) === JSON.stringify(expected);
        },
        `committed offsets of ${groupId} on ${topic} to become ${JSON.stringify(expected)}`,
      );
    } catch (error) {
      // Show what they were instead, which says more than the timeout.
      expect(last).toEqual(expected);
      throw error;
    }
  }
}

/** A record for `topic` with a UTF-8 value and, unless given, no key and no headers. */
export function record(topic: string, value: string | null, parts: RecordParts = {}): OutgoingMessage {
  const key = parts.key === undefined || parts.key === null ? null : Buffer.isBuffer(parts.key) ? parts.key : Buffer.from(parts.key);
  return {
    topic,
    key,
    value: value === null ? null : Buffer.from(value),
    headers: parts.headers ?? {},
    ...(parts.partition === undefined ? {} : { partition: parts.partition }),
  };
}

/** `count` records `${prefix}-0`… for one partition of `topic`. */
export function records(topic: string, partition: number, prefix: string, count: number): OutgoingMessage[] {
  return Array.from({ length: count }, (_, i) => record(topic, `${prefix}-${i}`, { partition }));
}

/** The partition `partition` of `topic`. */
export const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition });

/** A capability of {@link TransportUnderTest} that a contract test needs (a transport reports `false` for a client gap). */
export type ContractCapability = 'holdsRejoinForRevokingCommits' | 'readPartition' | 'deleteRecordsBefore' | 'publishesMemberInfo';

/**
 * Declares one contract test: each run gets a fresh transport under test and a {@link ContractContext}.
 * With `requires`, a transport that lacks one of the capabilities skips the test (the skip names it).
 */
export type ContractTest = (
  title: string,
  test: (context: ContractContext) => Promise<void>,
  requires?: ContractCapability | readonly ContractCapability[],
) => void;

/** Whether the transport under test lacks `capability`. */
function lacks(under: TransportUnderTest, capability: ContractCapability): boolean {
  // readPartition is optional on the seam itself, deleteRecordsBefore on the transport under test: absent, the capability is.
  if (capability === 'readPartition') return under.transport.readPartition === undefined;
  if (capability === 'deleteRecordsBefore') return under.deleteRecordsBefore === undefined;
  return under[capability] === false;
}

/** The `it` of a contract section, bound to the transport factory. */
export function contractTest(factory: TransportFactory): ContractTest {
  return (title, test, requires) => {
    it(title, async (vitest) => {
      const under = factory();
      const missing = (requires === undefined ? [] : typeof requires === 'string' ? [requires] : requires).filter((c) => lacks(under, c));
      if (missing.length > 0) {
        await under.cleanup();
        vitest.skip(`${under.transport.name}: client gap, ${missing.join(', ')} is false`);
        return;
      }
      await ContractContext.run(under, test);
    });
  };
}
