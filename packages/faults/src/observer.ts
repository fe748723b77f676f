import { executionQuality, topResults } from '@stream/contracts';
import { bytesCodec, createApp, DEAD_LETTER_HEADERS, deadLetterTopicName, defineTopic, silentLogger, type App, type Headers } from '@stream/core';
import type { InputTopic } from './fuzz.js';
import { RECORD_HEADER } from './load.js';

export const INPUT_TOPICS: readonly InputTopic[] = ['feed_activities', 'orders', 'search_queries'];

/** One dead letter as read back from `<topic>.dlq`. */
export interface DeadLetter {
  readonly source: InputTopic;
  readonly app: string;
  readonly fid: string;
  readonly reason: string;
  /** Every header the runtime promises was there. */
  readonly complete: boolean;
}

const anyBytes = { '~standard': { version: 1 as const, vendor: 'faults', validate: (value: unknown) => ({ value }) } };
const REQUIRED = [
  DEAD_LETTER_HEADERS.sourceTopic,
  DEAD_LETTER_HEADERS.partition,
  DEAD_LETTER_HEADERS.offset,
  DEAD_LETTER_HEADERS.errorClass,
  DEAD_LETTER_HEADERS.errorMessage,
  DEAD_LETTER_HEADERS.appId,
];

/** Adds `value` to the set of `key`, creating it. */
function note(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

/**
 * Reads, from outside and read-committed, what reached the topics: the input records (by their
 * `faults.id` header), the services' outputs and the dead letters. Everything is keyed by partition and
 * offset, so a record the observer itself is redelivered (its own consumer survives the same faults) is
 * counted once: two entries for one id mean two records in the topic.
 */
export class TopicObserver {
  readonly app: App;
  /** `faults.id` → input positions (`topic:partition:offset`): more than one if the producer wrote it twice. */
  readonly inputs = new Map<string, Set<string>>();
  /** Order id → positions of its execution report. */
  readonly reports = new Map<string, Set<string>>();
  /** Query id → positions of its top result. */
  readonly results = new Map<string, Set<string>>();
  /** `<app>|<faults.id>` → positions of its dead letters. */
  readonly deadLetterPositions = new Map<string, Set<string>>();
  readonly deadLetters = new Map<string, DeadLetter>();

  constructor(options: { brokers: readonly string[]; groupId: string }) {
    // The observer reads every record as it is: the hostile corpus's 5,000 headers and 100 KiB of them too.
    this.app = createApp({
      id: options.groupId,
      brokers: options.brokers,
      logger: silentLogger(),
      startFrom: 'earliest',
      commitIntervalMs: 500,
      headerLimits: { maxHeaders: 1_000_000, maxBytes: 64 * 1024 * 1024 },
    });
    const fast = { deadLetter: false as const, concurrency: 1000, ordering: 'none' as const };
    this.app.agent(executionQuality, { ...fast, name: 'reports' }, async (report, ctx) => note(this.reports, report.orderId, `${ctx.partition}:${ctx.offset}`));
    this.app.agent(topResults, { ...fast, name: 'results' }, async (result, ctx) => note(this.results, result.id, `${ctx.partition}:${ctx.offset}`));
    for (const source of INPUT_TOPICS) {
      const input = defineTopic({ name: source, value: anyBytes, codec: bytesCodec, keyCodec: bytesCodec });
      this.app.agent(input, { ...fast, name: `input-${source}` }, async (_value, ctx) => {
        const fid = ctx.headers[RECORD_HEADER];
        if (fid !== undefined) note(this.inputs, fid, `${source}:${ctx.partition}:${ctx.offset}`);
      });
      const dlq = defineTopic({ name: deadLetterTopicName(source), value: anyBytes, codec: bytesCodec, keyCodec: bytesCodec });
      this.app.agent(dlq, { ...fast, name: `dlq-${source}` }, async (_value, ctx) => this.#deadLetter(source, ctx.headers, `${ctx.partition}:${ctx.offset}`));
    }
  }

  #deadLetter(source: InputTopic, headers: Headers, position: string): void {
    const fid = headers[RECORD_HEADER] ?? `unknown@${source}:${position}`;
    const app = headers[DEAD_LETTER_HEADERS.appId] ?? 'unknown';
    note(this.deadLetterPositions, `${app}|${fid}`, position);
    const complete = REQUIRED.every((h) => (headers[h] ?? '') !== '') && headers[DEAD_LETTER_HEADERS.sourceTopic] === source;
    this.deadLetters.set(`${app}|${fid}`, { source, app, fid, reason: headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', complete });
  }

  start(): Promise<void> {
    return this.app.start();
  }

  async stop(): Promise<void> {
    await this.app.stop();
  }
}
