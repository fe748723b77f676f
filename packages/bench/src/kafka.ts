/**
 * Parent-side Kafka chores: fresh topics for every run, the input data, output verification and cleanup.
 * None of this is measured.
 */
import { deadLetterTopicName } from '@stream/core';
import { deleteTopics, testKafka, uniqueName, withAdmin } from '@stream/local-stack';
import { Partitioners, logLevel, type Kafka, type KafkaMessage, type Message } from 'kafkajs';
import { generate, type DatasetSpec } from './data.js';
import { seqOfId } from './service-data.js';

let shared: Kafka | undefined;

/** One quiet kafkajs client for the runner's own chores. */
export function benchKafka(): Kafka {
  // Quiet: polling a new topic's metadata makes kafkajs log every UNKNOWN_TOPIC_OR_PARTITION; real failures throw.
  shared ??= testKafka({ clientId: 'stream-bench', logLevel: logLevel.NOTHING });
  return shared;
}

/**
 * Creates topics and waits until every partition has a leader. kafkajs' own `waitForLeaders` gives up on
 * the UNKNOWN_TOPIC_OR_PARTITION a KRaft broker answers while the new topic propagates, so we poll.
 */
export async function createFreshTopics(topics: ReadonlyArray<{ name: string; partitions: number; config?: Readonly<Record<string, string>> }>): Promise<void> {
  await withAdmin(async (admin) => {
    await admin.createTopics({
      waitForLeaders: false,
      topics: topics.map((t) => ({
        topic: t.name,
        numPartitions: t.partitions,
        replicationFactor: 1,
        ...(t.config ? { configEntries: Object.entries(t.config).map(([name, value]) => ({ name, value })) } : {}),
      })),
    });
    const deadline = Date.now() + 30_000;
    for (const t of topics) {
      for (;;) {
        try {
          const { topics: meta } = await admin.fetchTopicMetadata({ topics: [t.name] });
          const partitions = meta.find((m) => m.name === t.name)?.partitions ?? [];
          if (partitions.length === t.partitions && partitions.every((p) => p.leader >= 0)) break;
        } catch {
          // UNKNOWN_TOPIC_OR_PARTITION / LEADER_NOT_AVAILABLE while the topic propagates.
        }
        if (Date.now() > deadline) throw new Error(`topic ${t.name} has no leaders 30 s after it was created`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }, benchKafka());
}

/** The topics (input, output and the runtime's dead-letter topic) and group of one run. */
export interface RunTopics {
  readonly input: string;
  readonly output: string | undefined;
  readonly groupId: string;
}

/** Names for one run: nothing is shared between runs. */
export function runNames(scenario: string, side: string, round: number, withOutput: boolean): RunTopics {
  const base = uniqueName(`bench-${scenario}-${side}-r${round}`);
  return { input: `${base}-in`, output: withOutput ? `${base}-out` : undefined, groupId: `${base}-group` };
}

/** Deletes what a run created (dead-letter topic of the runtime included) and its consumer group. */
export async function cleanupRun(names: RunTopics): Promise<void> {
  const topics = [names.input, deadLetterTopicName(names.input), ...(names.output ? [names.output] : [])];
  await deleteTopics(topics).catch((error: unknown) => process.stderr.write(`bench: could not delete ${topics.join(', ')}: ${String(error)}\n`));
  await withAdmin(async (admin) => {
    await admin.deleteGroups([names.groupId]).catch(() => undefined);
  }, benchKafka()).catch(() => undefined);
}

/** Deletes consumer groups, ignoring ones that are gone. */
export async function deleteGroups(groupIds: readonly string[]): Promise<void> {
  await withAdmin(async (admin) => {
    await admin.deleteGroups([...groupIds]).catch(() => undefined);
  }, benchKafka()).catch(() => undefined);
}

/** How the data was produced (not part of any measurement). */
export interface Produced {
  readonly records: number;
  readonly bytes: number;
  readonly ms: number;
}

/**
 * Produces the data set to `topic` in large chunks, each stamped with the time it is sent. `inFlight`
 * chunks are sent at once; with 1 the offsets of a one-partition topic follow `seq` exactly, which the
 * per-key order check of io-keyed relies on.
 */
export async function produceDataset(topic: string, spec: DatasetSpec, inFlight = 4): Promise<Produced> {
  // The JSON without its closing brace: producedAt is appended when the chunk is sent.
  const records = (function* () {
    for (const record of generate(spec)) yield { key: record.key, json: JSON.stringify(record.value).slice(0, -1) };
  })();
  // Stay well below the broker's 1 MB record-batch limit per partition (~220 bytes a record).
  return produceChunks(topic, records, Math.min(12_000, 3_000 * spec.partitions), inFlight, (pending) => {
    const producedAt = Date.now();
    return pending.map((p) => ({ key: p.key, value: `${p.json},"producedAt":${producedAt}}` }));
  });
}

/**
 * Produces `items` to `topic` in chunks of `chunkSize`, `inFlight` chunks at once, each turned into its
 * messages (`toMessages`) just before it is sent (with the default murmur2 partitioner, as the runtime's).
 */
export async function produceChunks<T>(
  topic: string,
  items: Iterable<T>,
  chunkSize: number,
  inFlight: number,
  toMessages: (chunk: readonly T[]) => Message[],
): Promise<Produced> {
  const producer = benchKafka().producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const started = performance.now();
  let bytes = 0;
  let records = 0;
  const sending = new Set<Promise<void>>();
  let failure: Error | undefined;
  const send = async (pending: readonly T[]) => {
    while (sending.size >= Math.max(1, inFlight)) await Promise.race(sending);
    if (failure !== undefined) throw failure;
    const messages = toMessages(pending);
    for (const m of messages) bytes += m.value === null ? 0 : m.value.length;
    records += messages.length;
    const request: Promise<void> = producer
      .send({ topic, messages, acks: -1 })
      .then(
        () => undefined,
        (error: unknown) => {
          failure ??= error instanceof Error ? error : new Error(`send failed: ${JSON.stringify(error)}`);
        },
      )
      .finally(() => sending.delete(request));
    sending.add(request);
  };
  try {
    let pending: T[] = [];
    for (const item of items) {
      pending.push(item);
      if (pending.length >= chunkSize) {
        await send(pending);
        pending = [];
      }
    }
    if (pending.length > 0) await send(pending);
    await Promise.all(sending);
    if (failure !== undefined) throw failure;
  } finally {
    await producer.disconnect();
  }
  return { records, bytes, ms: performance.now() - started };
}

/** Sum of the partitions' end offsets (records + transaction markers) of a topic. */
export async function endOffsetSum(topic: string): Promise<number> {
  return withAdmin(async (admin) => {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, o) => sum + Number(o.high), 0);
  }, benchKafka());
}

/** What a verifying read of an output topic found. */
export interface OutputCount {
  readonly distinct: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly ms: number;
}

/**
 * Reads an output topic back (read_committed) and counts distinct `seq` values (from the value, or the
 * digits ending the key): every input must appear,
 * and under exactly-once exactly once. Stops once all are seen, or after `idleMs` without new records.
 */
export async function countOutput(topic: string, expected: number, idleMs = 5_000): Promise<OutputCount> {
  const started = performance.now();
  const seen = new Uint8Array(expected);
  let distinct = 0;
  let duplicates = 0;
  await readTopic(
    topic,
    (m) => {
      if (!m.value) return;
      // Outputs that do not carry `seq` (the services' reports) are keyed by an id ending in it.
      const parsed = JSON.parse(m.value.toString('utf8')) as { seq?: unknown };
      const seq = typeof parsed.seq === 'number' ? parsed.seq : seqOfId(m.key?.toString('utf8') ?? '');
      if (seq >= 0 && seq < expected && seen[seq] === 0) {
        seen[seq] = 1;
        distinct += 1;
      } else {
        duplicates += 1;
      }
    },
    () => distinct >= expected,
    idleMs,
  );
  return { distinct, duplicates, missing: expected - distinct, ms: performance.now() - started };
}

/**
 * Reads `topic` from the beginning (read_committed, a throwaway group) and hands each record to
 * `onMessage`, until `done()` holds after a batch, or nothing new came for `idleMs`.
 */
export async function readTopic(topic: string, onMessage: (message: KafkaMessage) => void, done: () => boolean, idleMs: number): Promise<void> {
  let lastProgress = Date.now();
  const groupId = uniqueName('bench-verify');
  const consumer = benchKafka().consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) onMessage(m);
        lastProgress = Date.now();
        if (done()) finish();
      },
    });
    const idle = setInterval(() => {
      if (Date.now() - lastProgress > idleMs) finish();
    }, 250);
    await finished;
    clearInterval(idle);
  } finally {
    await consumer.disconnect();
    await withAdmin((admin) => admin.deleteGroups([groupId]), benchKafka()).catch(() => undefined);
  }
}
