import { DEAD_LETTER_HEADERS, deadLetterTopicName, decodeHeaders, StreamError, type AnyTopic, type Decoded, type Transport } from '@stream/core';
import { randomBytes } from 'node:crypto';
import { cliConsumerOptions, readToEnd, type ReadOutcome } from './read.js';

/** Where command output goes (stdout in the CLI, an array in tests). */
export type Print = (line: string) => void;

function findTopic(topics: readonly AnyTopic[], name: string): AnyTopic {
  const topic = topics.find((t) => t.name === name);
  if (!topic) throw new StreamError('TOPIC_MISSING', `no contract for topic ${name}; known: ${topics.map((t) => t.name).join(', ')}`);
  return topic;
}

/** `stream send <topic> <json>`: validates against the contract, then produces. */
export async function sendCommand(
  transport: Transport,
  topics: readonly AnyTopic[],
  args: { topic: string; json: string; key?: string; headers?: Record<string, string> },
  print: Print,
): Promise<void> {
  const topic = findTopic(topics, args.topic);
  let value: unknown;
  try {
    value = JSON.parse(args.json);
  } catch (error) {
    throw new StreamError('DECODE_FAILED', `the record is not valid JSON: ${(error as Error).message}`);
  }
  const message = await topic.encode({ key: args.key ?? null, value, headers: args.headers ?? {} });
  const producer = transport.producer();
  await producer.connect();
  try {
    await producer.send([message]);
  } finally {
    await producer.disconnect();
  }
  print(`sent to ${topic.name}${args.key ? ` (key ${args.key})` : ''}`);
}

/** `stream topics create`: creates every contract topic and its dead-letter topic, leaving existing ones. */
export async function createTopicsCommand(transport: Transport, topics: readonly AnyTopic[], print: Print): Promise<void> {
  const admin = transport.admin();
  await admin.connect();
  try {
    const specs = topics.flatMap((t) => {
      const partitions = t.partitions ?? 1;
      const config = { ...t.config, ...(t.retentionMs === undefined ? {} : { 'retention.ms': String(t.retentionMs) }) };
      return [
        { name: t.name, partitions, config },
        { name: deadLetterTopicName(t.name), partitions },
      ];
    });
    const created = new Set(await admin.createTopics(specs));
    for (const spec of specs) print(`${created.has(spec.name) ? 'created' : 'exists '} ${spec.name} (${spec.partitions} partitions)`);
  } finally {
    await admin.disconnect();
  }
}

/** `stream tail <topic>`: prints decoded records as JSON lines; undecodable ones are shown with the reason. */
export async function tailCommand(
  transport: Transport,
  topics: readonly AnyTopic[],
  args: { topic: string; max?: number; signal?: AbortSignal },
  print: Print,
): Promise<number> {
  const topic = findTopic(topics, args.topic);
  let count = 0;
  const done = new AbortController();
  const consumer = transport.consumer(cliConsumerOptions(`stream-cli-tail-${randomBytes(4).toString('hex')}`, topic.name));
  const pending: Promise<void>[] = [];
  await consumer.start({
    onAssignment: () => undefined,
    onRevoking: () => undefined,
    onCrash: () => done.abort(),
    onBatch: (batch) => {
      for (const message of batch.messages) {
        if (args.max !== undefined && count >= args.max) break;
        count += 1;
        pending.push(
          (async () => {
            const where = { partition: batch.partition, offset: message.offset };
            try {
              const decoded: Decoded<unknown, unknown> = await topic.decode(message, { partition: batch.partition });
              print(JSON.stringify({ ...where, key: decoded.key, value: decoded.value, headers: decoded.headers }, null, 2));
            } catch (error) {
              print(JSON.stringify({ ...where, error: (error as Error).message, raw: message.value?.toString('utf8') ?? null }, null, 2));
            }
          })(),
        );
      }
      if (args.max !== undefined && count >= args.max) done.abort();
      return batch.messages.length;
    },
  });
  await new Promise<void>((resolve) => {
    done.signal.addEventListener('abort', () => resolve(), { once: true });
    args.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  await Promise.all(pending);
  await consumer.stop();
  return count;
}

const DLQ_HEADER_NAMES = new Set<string>(Object.values(DEAD_LETTER_HEADERS));

/** `stream dlq list <topic>`: every dead letter with its failure headers. */
export async function dlqListCommand(transport: Transport, args: { topic: string; deadLetterTopic?: string }, print: Print): Promise<number> {
  const dlq = args.deadLetterTopic ?? deadLetterTopicName(args.topic);
  return readToEnd(transport, dlq, {
    groupId: `stream-cli-dlq-list-${randomBytes(4).toString('hex')}`,
    commit: false,
    onMessage: (m) => {
      const headers = decodeHeaders(m.headers);
      const failure = Object.fromEntries(Object.entries(headers).filter(([k]) => DLQ_HEADER_NAMES.has(k)));
      print(
        JSON.stringify({ partition: m.partition, offset: m.offset, key: m.key?.toString('utf8') ?? null, failure, value: m.value?.toString('utf8') ?? null }),
      );
    },
  });
}

/** What a replay did: letters sent back, letters skipped by `--match`, and letters a later replay reads again. */
export interface ReplayResult {
  readonly replayed: number;
  readonly skipped: number;
  /**
   * Letters replayed by this run after the first one it skipped in their partition: the group's progress
   * cannot pass a skipped letter, so a later replay reads these again (and, when they match it, sends them again).
   */
  readonly readAgain: number;
}

/**
 * `stream dlq replay <topic>`: sends dead letters back to their source topic with their original key, value
 * and headers. Progress is committed under the group `stream-cli-dlq-replay.<dlq>`, so replaying twice does
 * not send a dead letter twice. `--match` replays only letters whose error message matches; the others stay
 * for a later replay: in each partition progress is committed only up to the first letter skipped, so a later
 * replay (with another `--match`, or none) still finds every skipped letter. Matching letters after that first
 * skipped one are replayed now and read again by that later replay (reported as `readAgain`).
 */
export async function dlqReplayCommand(
  transport: Transport,
  args: { topic: string; deadLetterTopic?: string; match?: RegExp },
  print: Print,
): Promise<ReplayResult> {
  const dlq = args.deadLetterTopic ?? deadLetterTopicName(args.topic);
  const producer = transport.producer();
  await producer.connect();
  let replayed = 0;
  let skipped = 0;
  let readAgain = 0;
  const skippedIn = new Set<number>();
  try {
    await readToEnd(transport, dlq, {
      groupId: `stream-cli-dlq-replay.${dlq}`,
      commit: true,
      onMessage: async (m): Promise<ReadOutcome> => {
        const headers = decodeHeaders(m.headers);
        const source = headers[DEAD_LETTER_HEADERS.sourceTopic] ?? args.topic;
        if (args.match && !args.match.test(headers[DEAD_LETTER_HEADERS.errorMessage] ?? '')) {
          skipped += 1;
          skippedIn.add(m.partition);
          return 'left';
        }
        const original = Object.fromEntries(Object.entries(m.headers).filter(([k]) => !DLQ_HEADER_NAMES.has(k)));
        await producer.send([{ topic: source, key: m.key, value: m.value, headers: original }]);
        replayed += 1;
        if (skippedIn.has(m.partition)) readAgain += 1;
        return 'done';
      },
    });
  } finally {
    await producer.disconnect();
  }
  const notes = [
    ...(skipped ? [`skipped ${skipped} not matching (left for a later replay)`] : []),
    ...(readAgain ? [`${readAgain} replayed after a skipped one will be read again by a later replay`] : []),
  ];
  print(`replayed ${replayed} dead letter(s) from ${dlq}${notes.map((n) => `, ${n}`).join('')}`);
  return { replayed, skipped, readAgain };
}
