import { StreamError } from '../errors.js';
import { retryTopicName } from '../topology.js';
import { emptyRawHeaders, type OutgoingMessage, type RawHeaders, type RawMessage } from '../transport/transport.js';
import { errorMessageHeader } from './dead-letter.js';

/** Header names a record carries on a delayed-retry topic, beside the original record's own headers. */
export const RETRY_HEADERS = {
  /** Where the record was first consumed: its dead letter names this source, so a replay goes back there. */
  sourceTopic: 'retry.source.topic',
  partition: 'retry.source.partition',
  offset: 'retry.source.offset',
  /** Attempts so far, over every stage. */
  attempts: 'retry.attempts',
  firstFailureAt: 'retry.first.failure.at',
  errorClass: 'retry.error.class',
  errorMessage: 'retry.error.message',
  /** Milliseconds since the epoch before which the record is not processed again. */
  dueAt: 'retry.due.at',
} as const;

const RETRY_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(RETRY_HEADERS));
/** A week: a longer delay is a scheduling job, not a retry (and outlives most topics' retention). */
const MAX_DELAY_MS = 7 * 24 * 3_600_000;

/** One delayed-retry stage of an agent. */
export interface RetryStage {
  readonly topic: string;
  readonly delayMs: number;
}

/**
 * The stages of `source` for `delaysMs`: `<source>.retry.<label>` each, in order. Rejects delays that are
 * not whole positive milliseconds up to a week, and repeated delays (they would share one topic).
 */
export function retryStages(source: string, delaysMs: readonly number[]): RetryStage[] {
  const stages = delaysMs.map((delayMs) => {
    if (!Number.isInteger(delayMs) || delayMs <= 0 || delayMs > MAX_DELAY_MS) {
      throw new StreamError('CONFIG_INVALID', `agent on ${source}: retry topic delay ${delayMs} must be whole milliseconds, 1 to ${MAX_DELAY_MS} (a week)`, {
        context: { topic: source },
      });
    }
    return { topic: retryTopicName(source, delayMs), delayMs };
  });
  const names = new Set(stages.map((s) => s.topic));
  if (names.size !== stages.length) throw new StreamError('CONFIG_INVALID', `agent on ${source}: retry topic delays repeat`, { context: { topic: source } });
  return stages;
}

/** Where a record on a retry topic came from and how it has fared so far. */
export interface RetryOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly attempts: number;
  readonly firstFailureAt: Date;
  readonly dueAt: number;
}

const text = (headers: RawHeaders, name: string): string | undefined => headers[name]?.toString('utf8');

/**
 * Reads the origin headers of a record consumed from a retry topic. Returns undefined when they are
 * missing or malformed (a record someone else wrote there): it is then treated as a first attempt, due now.
 */
export function retryOrigin(message: RawMessage): RetryOrigin | undefined {
  const h = message.headers;
  const topic = text(h, RETRY_HEADERS.sourceTopic);
  const partition = Number(text(h, RETRY_HEADERS.partition));
  const offset = text(h, RETRY_HEADERS.offset);
  const attempts = Number(text(h, RETRY_HEADERS.attempts));
  const firstFailureAt = new Date(text(h, RETRY_HEADERS.firstFailureAt) ?? '');
  const dueAt = Number(text(h, RETRY_HEADERS.dueAt));
  if (
    topic === undefined ||
    offset === undefined ||
    !Number.isInteger(partition) ||
    !Number.isInteger(attempts) ||
    !Number.isFinite(dueAt) ||
    Number.isNaN(firstFailureAt.getTime())
  ) {
    return undefined;
  }
  return { topic, partition, offset, attempts, firstFailureAt, dueAt };
}

/** The record's own headers, without the retry bookkeeping. */
export function withoutRetryHeaders(headers: RawHeaders): RawHeaders {
  const out = emptyRawHeaders();
  for (const [name, value] of Object.entries(headers)) if (!RETRY_HEADER_NAMES.has(name)) out[name] = value;
  return out;
}

/**
 * The record as sent to a retry stage: original key, value bytes and headers, its first source, the
 * attempts so far, the last error, and when it is due.
 */
export function retryMessage(input: {
  stage: RetryStage;
  message: RawMessage;
  origin: { topic: string; partition: number; offset: string; firstFailureAt: Date };
  attempts: number;
  error: Error;
  now: number;
}): OutgoingMessage {
  const h = RETRY_HEADERS;
  return {
    topic: input.stage.topic,
    key: input.message.key,
    value: input.message.value,
    headers: {
      ...withoutRetryHeaders(input.message.headers),
      [h.sourceTopic]: Buffer.from(input.origin.topic),
      [h.partition]: Buffer.from(String(input.origin.partition)),
      [h.offset]: Buffer.from(input.origin.offset),
      [h.attempts]: Buffer.from(String(input.attempts)),
      [h.firstFailureAt]: Buffer.from(input.origin.firstFailureAt.toISOString()),
      [h.errorClass]: Buffer.from(input.error.name),
      [h.errorMessage]: errorMessageHeader(input.error),
      [h.dueAt]: Buffer.from(String(input.now + input.stage.delayMs)),
    },
  };
}
