import type { OutgoingMessage, RawMessage } from '../transport/transport.js';

/** Header names a dead letter carries beside the original record's own headers. */
export const DEAD_LETTER_HEADERS = {
  sourceTopic: 'dlq.source.topic',
  partition: 'dlq.source.partition',
  offset: 'dlq.source.offset',
  errorClass: 'dlq.error.class',
  errorMessage: 'dlq.error.message',
  attempts: 'dlq.attempts',
  firstFailureAt: 'dlq.first.failure.at',
  appId: 'dlq.app.id',
} as const;

const MAX_MESSAGE_BYTES = 4096;

/** An error's message as a header value, cut at 4 KiB: a header is no place for a stack of HTML. */
export function errorMessageHeader(error: Error): Buffer {
  const reason = Buffer.from(error.message, 'utf8');
  return reason.length > MAX_MESSAGE_BYTES ? reason.subarray(0, MAX_MESSAGE_BYTES) : reason;
}

/**
 * The dead letter of a record: its original key, value bytes and headers, plus where it came from and
 * why it failed, so it can be inspected and replayed to its source topic unchanged.
 */
export function deadLetterMessage(input: {
  appId: string;
  deadLetterTopic: string;
  sourceTopic: string;
  partition: number;
  message: RawMessage;
  error: Error;
  attempts: number;
  firstFailureAt: Date;
}): OutgoingMessage {
  const h = DEAD_LETTER_HEADERS;
  return {
    topic: input.deadLetterTopic,
    key: input.message.key,
    value: input.message.value,
    headers: {
      ...input.message.headers,
      [h.sourceTopic]: Buffer.from(input.sourceTopic),
      [h.partition]: Buffer.from(String(input.partition)),
      [h.offset]: Buffer.from(input.message.offset),
      [h.errorClass]: Buffer.from(input.error.name),
      [h.errorMessage]: errorMessageHeader(input.error),
      [h.attempts]: Buffer.from(String(input.attempts)),
      [h.firstFailureAt]: Buffer.from(input.firstFailureAt.toISOString()),
      [h.appId]: Buffer.from(input.appId),
    },
  };
}
