import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';
import { isSecretCommand, isSecretKey, REDACTED, redactSecrets, redactString } from './redact.js';

/** The structured logger used everywhere (pino). Child loggers carry agent, topic and partition. */
export type Logger = PinoLogger;

/**
 * The paths pino's own `redact` option used to be given. `createLogger` no longer passes them to pino: the shared
 * redaction (`redactSecrets`, ./redact.ts) covers each of them at any depth, plus URL credentials, bearer tokens
 * and Redis AUTH arguments, before any truncation, and pino's wildcard paths cost about 35 µs on every line
 * (15 times the rest of a line). Kept as an export for code that used them.
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
  if (typeof value === 'string') return cut(redactString(value));
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  if (value instanceof URL) return redactString(value.href);
  // got's Options (an error's `options`) and the like: what JSON would show of them, redacted like the rest.
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && !(value instanceof Error) && !Buffer.isBuffer(value)) {
    let json: unknown;
    try {
      json = (toJSON as () => unknown).call(value);
    } catch {
      return '[unserializable]';
    }
    if (json !== value) return bounded(json, depth, seen);
  }
  if (value instanceof Error) return depth < 3 ? serializeError(value, depth + 1, seen) : { type: value.name, message: value.message };
  if (Buffer.isBuffer(value)) return `<Buffer ${value.length} bytes>`;
  if (depth >= 5) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => bounded(v, depth + 1, seen));
    if (value.length > MAX_ITEMS) items.push(`… ${value.length - MAX_ITEMS} more`);
    return items;
  }
  const secretArgs = isSecretCommand(value);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value).slice(0, MAX_KEYS)) {
    out[key] = isSecretKey(key) ? REDACTED : secretArgs && key === 'args' && Array.isArray(v) ? v.map(() => REDACTED) : bounded(v, depth + 1, seen);
  }
  return out;
}

/** A string cut to {@link MAX_STRING}; callers redact first, so a secret straddling the cut is already gone. */
function cut(text: string): string {
  return text.length > MAX_STRING ? `${text.slice(0, MAX_STRING)}…` : text;
}

/**
 * Errors as pino's standard serializer writes them (type, message, stack, own fields, cause), but bounded:
 * some clients attach whole request objects or, like ioredis for a failed MULTI, an array of errors that
 * each hold the array again, which made single log lines hundreds of kilobytes and a logging burst during
 * an outage long enough to hold up a shutdown.
 */
function serializeError(error: Error, depth = 0, seen = new WeakSet<object>()): Record<string, unknown> {
  seen.add(error);
  const out: Record<string, unknown> = {
    type: error.constructor.name,
    message: redactString(error.message),
    stack: error.stack === undefined ? undefined : redactString(error.stack),
  };
  const secretArgs = isSecretCommand(error);
  for (const [key, value] of Object.entries(error).slice(0, MAX_KEYS)) {
    if (key in out) continue;
    out[key] = isSecretKey(key) ? REDACTED : secretArgs && key === 'args' && Array.isArray(value) ? value.map(() => REDACTED) : bounded(value, depth + 1, seen);
  }
  if (error.cause !== undefined && !('cause' in out)) out.cause = bounded(error.cause, depth, seen);
  return out;
}

/** Every field of a log line, redacted: errors bounded by {@link serializeError}, the rest copied whole. */
function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = isSecretKey(key) ? REDACTED : value instanceof Error ? serializeError(value) : redactSecrets(value, (e) => serializeError(e));
  }
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
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: redactFields, bindings: redactFields },
    serializers: { err: errSerializer },
    hooks: {
      // The message and its format arguments; an error logged alone lends pino its message, so give it redacted.
      logMethod(args, method) {
        const redacted = args.map((arg: unknown) => (typeof arg === 'string' ? redactString(arg) : arg)) as Parameters<typeof method>;
        if (redacted.length === 1 && redacted[0] instanceof Error) redacted.push(redactString(redacted[0].message));
        method.apply(this, redacted);
      },
    },
  };
  const logger = options.destination ? pino(config, options.destination as pino.DestinationStream) : pino(config);
  return redactingChildren(logger);
}

/**
 * pino drops the bindings formatter for child loggers, so a child's bindings (`log.child({ url })`) are redacted
 * here. Children are created with `Object.create(parent)`, so they inherit this `child` and redact their own.
 */
function redactingChildren(logger: Logger): Logger {
  // pino's own `child`, taken from its prototype and always called with the logger it is creating a child of.
  const child = Reflect.get(Object.getPrototypeOf(logger) as object, 'child') as (
    this: Logger,
    bindings: pino.Bindings,
    options?: pino.ChildLoggerOptions,
  ) => Logger;
  Object.defineProperty(logger, 'child', {
    value: function redactedChild(this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions): Logger {
      return child.call(this, redactFields(bindings), childOptions);
    },
    writable: true,
    configurable: true,
  });
  return logger;
}

/** A logger that drops everything (tests that do not care about logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
