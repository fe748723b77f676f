/** What went wrong, as a stable code that callers can switch on. */
export type StreamErrorCode =
  | 'SCHEMA_INVALID'
  | 'DECODE_FAILED'
  | 'ENCODE_FAILED'
  | 'NON_RETRYABLE'
  | 'CONFIG_INVALID'
  | 'TOPIC_MISSING'
  | 'TRANSPORT_FAILED'
  | 'DEPENDENCY_UNAVAILABLE'
  | 'ABORTED'
  | 'SHUTDOWN_TIMEOUT'
  | 'STATE_INVALID';

/** Where an error happened: the topic, partition and offset of the record, the agent, and so on. */
export type ErrorContext = Readonly<Record<string, string | number | boolean | undefined>>;

/**
 * The base of every error @stream/core throws: a code, a message that names what to fix, the context
 * it happened in and the original `cause`.
 *
 * @example
 * try { await orders.send(app, { key: 'o-1', value }) }
 * catch (e) { if (e instanceof StreamError && e.code === 'SCHEMA_INVALID') … }
 */
export class StreamError extends Error {
  readonly code: StreamErrorCode;
  readonly context: ErrorContext;

  constructor(code: StreamErrorCode, message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.context = options.context ?? {};
  }
}

/** One problem a schema found, with the path of the field it concerns. */
export interface SchemaIssue {
  readonly path: string;
  readonly message: string;
}

/** A record (key or value) did not satisfy its topic's schema. Never retried: it goes to the dead-letter topic. */
export class SchemaValidationError extends StreamError {
  readonly issues: readonly SchemaIssue[];

  constructor(topic: string, part: 'key' | 'value', issues: readonly SchemaIssue[], context: ErrorContext = {}) {
    const detail = issues.map((i) => `${i.path ? `${part}.${i.path}` : part}: ${i.message}`).join('; ');
    super('SCHEMA_INVALID', `${topic}: invalid ${part}: ${detail}`, { context: { topic, ...context } });
    this.issues = issues;
  }
}

/** The bytes of a record could not be decoded by the topic's codec (truncated JSON, wrong encoding). */
export class DecodeError extends StreamError {
  constructor(topic: string, part: 'key' | 'value' | 'headers', cause: unknown, context: ErrorContext = {}) {
    super('DECODE_FAILED', `${topic}: cannot decode ${part}: ${toError(cause).message}`, { cause, context: { topic, ...context } });
  }
}

/** A record could not be encoded for sending. */
export class EncodeError extends StreamError {
  constructor(topic: string, part: 'key' | 'value', cause: unknown) {
    super('ENCODE_FAILED', `${topic}: cannot encode ${part}: ${toError(cause).message}`, { cause, context: { topic } });
  }
}

/**
 * Throw this from a handler when retrying cannot help (a 400 from an API, a business rule): the record
 * goes straight to the dead-letter topic.
 *
 * @example
 * if (res.statusCode === 400) throw new NonRetryableError(`email API rejected order ${order.id}`, { cause: err });
 */
export class NonRetryableError extends StreamError {
  constructor(message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super('NON_RETRYABLE', message, options);
  }
}

/** True for failures that retrying cannot fix. */
export function isNonRetryable(error: unknown): boolean {
  return error instanceof NonRetryableError || error instanceof SchemaValidationError || error instanceof DecodeError;
}

/** Turns anything thrown into an Error, keeping the original as `cause` when it was not one. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return new Error(`non-error thrown: ${text}`, { cause: value });
}
