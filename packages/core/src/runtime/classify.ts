/**
 * Whose fault a failed attempt was: the record's (dead-lettered after the agent's attempts, or at once) or a
 * dependency's (waited out, never dead-lettered while the dependency is down). See `classifyFailure`.
 */
import { isNonRetryable, StreamError, type ErrorContext } from '../errors.js';
import type { RawHeaders } from '../transport/transport.js';

/** What a failed attempt says about its record. */
export type FailureClass =
  /** The record's own fault (a bug, a value the dependency refuses, a 4xx): retried `retry.attempts` times, then dead-lettered. */
  | { readonly kind: 'record' }
  /** Retrying cannot help (schema, decode, {@link NonRetryableError}): dead-lettered at once. */
  | { readonly kind: 'permanent' }
  /**
   * A dependency is down, slow or overloaded (connection refused, timeout, 5xx, 429): waited out without
   * limit, the agent starting no new records until it answers; the attempt counts against `retry.attempts`
   * only when the dependency is seen answering meanwhile (its check passed, or other records succeeded).
   */
  | { readonly kind: 'dependency'; readonly dependency: string };

/** The record whose attempt failed, as it was consumed (its value may not even decode). */
export interface FailedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly headers: RawHeaders;
}

/**
 * An agent's own classification, tried before the default one: return a {@link FailureClass}, or
 * `undefined` to leave the error to {@link classifyFailure}.
 *
 * @example
 * classify: (error) => (error instanceof QuotaExceeded ? { kind: 'dependency', dependency: 'partner-api' } : undefined)
 */
export type Classifier = (error: Error, record: FailedRecord) => FailureClass | undefined;

export const RECORD_FAULT: FailureClass = Object.freeze({ kind: 'record' });
export const PERMANENT_FAULT: FailureClass = Object.freeze({ kind: 'permanent' });

/**
 * Throw this (or a subclass) when a dependency cannot serve the record right now: the agent waits for
 * `dependency` to answer again instead of spending the record's attempts.
 *
 * @example
 * if (res.status === 503) throw new DependencyError('partner-api', `partner API answered 503 for ${id}`);
 */
export class DependencyError extends StreamError {
  readonly dependency: string;

  constructor(dependency: string, message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super('DEPENDENCY_UNAVAILABLE', message, { ...options, context: { dependency, ...options.context } });
    this.dependency = dependency;
  }
}

/** Node's and undici's codes for a connection that failed, broke or timed out. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'EADDRNOTAVAIL',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** Error names the clients we support use for "could not reach the server in time". */
const UNAVAILABLE_NAMES = new Set([
  'TimeoutError', // got, @elastic/transport, AbortSignal.timeout()
  'ConnectionError', // @elastic/transport
  'NoLivingConnectionsError', // @elastic/transport
  'RequestTimedOutError', // @influxdata/influxdb-client
  'MaxRetriesPerRequestError', // ioredis
  'ClusterAllFailedError', // ioredis
]);

/** Redis replies that mean the server, not the command, is the problem. */
const REDIS_UNAVAILABLE = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|OOM|NOREPLICAS|MISCONF)\b/;

/** ioredis' messages when it has no usable connection. */
const REDIS_NO_CONNECTION = /^(Connection is closed\.|Stream isn't writeable|Reached the max retries per request limit)/;

function field(value: object, name: string): unknown {
  return (value as Record<string, unknown>)[name];
}

function record(value: unknown): object | undefined {
  return typeof value === 'object' && value !== null ? value : undefined;
}

/** The HTTP status an error carries, from got (`response.statusCode`), @elastic/transport (`meta.statusCode`) or the InfluxDB client (`statusCode`). */
function httpStatus(error: object): number | undefined {
  for (const holder of [error, record(field(error, 'response')), record(field(error, 'meta'))]) {
    if (!holder) continue;
    const status = field(holder, 'statusCode') ?? field(holder, 'status');
    if (typeof status === 'number' && Number.isInteger(status) && status >= 100 && status < 600) return status;
  }
  return undefined;
}

/** 408, 429 and 5xx: the server cannot serve anyone right now. */
export function isUnavailableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Which dependency an error came from, for `/readyz` and the circuit: a name stable across records. */
function dependencyName(error: Error): string {
  const name = error.name;
  if (name.startsWith('KafkaJS') || (error instanceof StreamError && error.code === 'TRANSPORT_FAILED')) return 'kafka';
  if (name === 'ReplyError' || name === 'MaxRetriesPerRequestError' || name === 'ClusterAllFailedError' || REDIS_NO_CONNECTION.test(error.message))
    return 'redis';
  if (name === 'HttpError' || name === 'RequestTimedOutError') return 'influxdb';
  const meta = record(field(error, 'meta'));
  if (meta && (field(meta, 'meta') !== undefined || field(meta, 'body') !== undefined)) return 'elasticsearch';
  if (name === 'ConnectionError' || name === 'NoLivingConnectionsError') return 'elasticsearch';
  // got: the request's URL names the server.
  const options = record(field(error, 'options'));
  const url = options ? field(options, 'url') : undefined;
  if (url instanceof URL) return `http ${url.host}`;
  const address = field(error, 'address');
  const port = field(error, 'port');
  if (typeof address === 'string') return typeof port === 'number' ? `${address}:${port}` : address;
  const hostname = field(error, 'hostname');
  if (typeof hostname === 'string') return hostname;
  return 'network';
}

/** The class of one error, without looking at its causes; undefined when it says nothing. */
function classifyOne(error: Error): FailureClass | undefined {
  if (isNonRetryable(error)) return PERMANENT_FAULT;
  if (error instanceof DependencyError) return { kind: 'dependency', dependency: error.dependency };
  const status = httpStatus(error);
  if (status !== undefined) return isUnavailableStatus(status) ? { kind: 'dependency', dependency: dependencyName(error) } : RECORD_FAULT;
  const retriable = field(error, 'retriable');
  if (error.name.startsWith('KafkaJS')) return retriable === false ? undefined : { kind: 'dependency', dependency: 'kafka' };
  if (error instanceof StreamError && error.code === 'TRANSPORT_FAILED') return { kind: 'dependency', dependency: 'kafka' };
  const code = field(error, 'code');
  // @platformatic/kafka: codes PLT_KFK_*; `canRetry` marks network failures and retriable protocol errors.
  if (typeof code === 'string' && code.startsWith('PLT_KFK_'))
    return field(error, 'canRetry') === true ? { kind: 'dependency', dependency: 'kafka' } : undefined;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return { kind: 'dependency', dependency: dependencyName(error) };
  if (UNAVAILABLE_NAMES.has(error.name)) return { kind: 'dependency', dependency: dependencyName(error) };
  if (REDIS_NO_CONNECTION.test(error.message) || (error.name === 'ReplyError' && REDIS_UNAVAILABLE.test(error.message)))
    return { kind: 'dependency', dependency: 'redis' };
  return undefined;
}

/**
 * The default classification of a handler's error: its own class, else the first class found among its
 * causes (`cause`, and `errors` of an AggregateError, five levels deep), else the record's fault.
 *
 * - permanent: `NonRetryableError`, `SchemaValidationError`, `DecodeError`;
 * - dependency: `DependencyError`; HTTP 408, 429 and 5xx (got, @elastic/elasticsearch, the InfluxDB client);
 *   connection refused/reset, DNS failures and timeouts (Node and undici codes, got, @elastic/transport and
 *   InfluxDB timeouts); ioredis without a connection and Redis replies such as LOADING, BUSY or OOM; kafkajs
 *   errors that are retriable; @platformatic/kafka errors (PLT_KFK_*) with `canRetry`;
 * - record: everything else, HTTP 4xx other than 408 and 429 included.
 */
export function classifyFailure(error: unknown): FailureClass {
  const seen = new Set<unknown>();
  let level: unknown[] = [error];
  for (let depth = 0; depth < 5 && level.length > 0; depth += 1) {
    const next: unknown[] = [];
    for (const candidate of level) {
      if (!(candidate instanceof Error) || seen.has(candidate)) continue;
      seen.add(candidate);
      const found = classifyOne(candidate);
      if (found) return found;
      if (candidate.cause !== undefined) next.push(candidate.cause);
      const errors = field(candidate, 'errors');
      if (Array.isArray(errors)) next.push(...(errors as unknown[]));
    }
    level = next;
  }
  return RECORD_FAULT;
}
