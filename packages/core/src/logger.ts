import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';

/** The structured logger used everywhere (pino). Child loggers carry agent, topic and partition. */
export type Logger = PinoLogger;

/**
 * Paths redacted from every log line: credentials in configs, clients' options and headers. A log line
 * that mentions a secret shows `[redacted]` instead.
 */
export const REDACT_PATHS: readonly string[] = [
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  '*.*.token',
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'sasl',
  '*.sasl',
  'authorization',
  '*.authorization',
  '*.*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'Authorization',
  '*.Authorization',
  '*.headers.Authorization',
  // HTTP clients' errors (got, fetch wrappers) carry their request options, headers included.
  '*.options.headers.authorization',
  '*.options.headers.Authorization',
  '*.request.options.headers.authorization',
  '*.config.headers.authorization',
  '*.config.headers.Authorization',
  'secret',
  '*.secret',
];

const MAX_ITEMS = 5;
const MAX_KEYS = 30;
const MAX_STRING = 4096;

/** A bounded copy of a value for a log line: short arrays, shallow objects, cut strings. */
function bounded(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  if (value instanceof Error) return depth < 3 ? serializeError(value, depth + 1, seen) : { type: value.name, message: value.message };
  if (Buffer.isBuffer(value)) return `<Buffer ${value.length} bytes>`;
  if (depth >= 5) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => bounded(v, depth + 1, seen));
    if (value.length > MAX_ITEMS) items.push(`… ${value.length - MAX_ITEMS} more`);
    return items;
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value).slice(0, MAX_KEYS)) out[key] = bounded(v, depth + 1, seen);
  return out;
}

/**
 * Errors as pino's standard serializer writes them (type, message, stack, own fields, cause), but bounded:
 * some clients attach whole request objects or, like ioredis for a failed MULTI, an array of errors that
 * each hold the array again, which made single log lines hundreds of kilobytes and a logging burst during
 * an outage long enough to hold up a shutdown.
 */
function serializeError(error: Error, depth = 0, seen = new WeakSet<object>()): Record<string, unknown> {
  seen.add(error);
  const out: Record<string, unknown> = { type: error.constructor.name, message: error.message, stack: error.stack };
  for (const [key, value] of Object.entries(error).slice(0, MAX_KEYS)) {
    if (key in out) continue;
    out[key] = bounded(value, depth + 1, seen);
  }
  if (error.cause !== undefined && !('cause' in out)) out.cause = bounded(error.cause, depth, seen);
  return out;
}

/** pino's `err` serializer with {@link serializeError}; anything that is not an Error passes unchanged. */
function errSerializer(value: unknown): unknown {
  return value instanceof Error ? serializeError(value) : value;
}

/**
 * Creates the JSON logger of an app or service.
 *
 * @example const log = createLogger({ name: 'order-emailer', level: 'info' });
 */
export function createLogger(options: { name: string; level?: string; destination?: NodeJS.WritableStream } = { name: 'stream' }): Logger {
  const config: LoggerOptions = {
    name: options.name,
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: errSerializer },
  };
  return options.destination ? pino(config, options.destination as pino.DestinationStream) : pino(config);
}

/** A logger that drops everything (tests that do not care about logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
