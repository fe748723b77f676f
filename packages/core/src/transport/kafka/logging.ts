/**
 * The bridge from kafkajs' logger to ours: level mapping, the default stderr sink, and the scrubbing that
 * keeps credentials out of every kafkajs log line.
 */
import { logLevel as KafkaJsLogLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import { isSecretKey, REDACTED, redactString } from '../../redact.js';

/** Severity of a kafkajs log line. */
export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** One kafkajs log line, credentials already removed. */
export interface KafkaLogEntry {
  readonly level: KafkaLogLevel;
  /** The kafkajs component: `Consumer`, `Runner`, `Connection`… */
  readonly namespace: string;
  readonly message: string;
  /** What kafkajs attached to the line (broker, groupId, error, stack…). */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Receives kafkajs log lines as plain entries. */
export type KafkaLogFunction = (entry: KafkaLogEntry) => void;

/** A pino-like logger (a pino `Logger` fits): kafkajs lines are written as `logger[level](fields, message)`. */
export interface KafkaLogSink {
  error(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

/** The kafkajs level for each of ours. */
export const KAFKAJS_LEVELS: Record<KafkaLogLevel | 'nothing', KafkaJsLogLevel> = {
  nothing: KafkaJsLogLevel.NOTHING,
  error: KafkaJsLogLevel.ERROR,
  warn: KafkaJsLogLevel.WARN,
  info: KafkaJsLogLevel.INFO,
  debug: KafkaJsLogLevel.DEBUG,
};

function levelName(level: KafkaJsLogLevel): KafkaLogLevel {
  switch (level) {
    case KafkaJsLogLevel.ERROR:
      return 'error';
    case KafkaJsLogLevel.WARN:
      return 'warn';
    case KafkaJsLogLevel.INFO:
      return 'info';
    default:
      return 'debug';
  }
}

/**
 * Copies a log value into something JSON-safe with secrets removed: keys that name a credential are
 * redacted wherever they are, and the configured password is cut out of any string (an error message
 * could quote it). Depth is bounded because kafkajs sometimes attaches whole request objects.
 */
function scrub(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') {
    // The shared redaction (URL credentials, bearer tokens), then the configured password and tokens themselves.
    let text = redactString(value);
    for (const secret of secrets) if (secret.length > 0) text = text.split(secret).join(REDACTED);
    return text;
  }
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (Buffer.isBuffer(value)) return `<Buffer ${value.length} bytes>`;
  if (depth >= 4) return '[…]';
  if (value instanceof Error) {
    return { name: value.name, message: scrub(value.message, secrets), stack: scrub(value.stack, secrets) };
  }
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => scrub(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = isSecretKey(key) ? REDACTED : scrub(v, secrets, depth + 1);
  return out;
}

function stderrJsonLines(entry: KafkaLogEntry): void {
  if (entry.level !== 'error' && entry.level !== 'warn') return;
  const line = { time: new Date().toISOString(), level: entry.level, component: 'kafkajs', namespace: entry.namespace, msg: entry.message, ...entry.fields };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

function messageText(message: unknown, secrets: readonly string[]): string {
  const text = typeof message === 'string' ? message : message instanceof Error ? message.message : (JSON.stringify(scrub(message, secrets)) ?? '');
  return scrub(text, secrets) as string;
}

/** Bridges kafkajs' `logCreator` to our logger option. */
export function createLogCreator(logger: KafkaLogFunction | KafkaLogSink | undefined, secrets: readonly string[]): NonNullable<KafkaConfig['logCreator']> {
  const emit: KafkaLogFunction =
    logger === undefined
      ? stderrJsonLines
      : typeof logger === 'function'
        ? logger
        : (entry) => logger[entry.level]({ namespace: entry.namespace, ...entry.fields }, entry.message);
  return () => (entry: LogEntry) => {
    // kafkajs types the content as `any`; treat it as unknown data.
    const content: Readonly<Record<string, unknown>> = entry.log;
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(content)) {
      if (key === 'message' || key === 'timestamp' || key === 'logger') continue;
      fields[key] = isSecretKey(key) ? REDACTED : scrub(value, secrets);
    }
    try {
      emit({ level: levelName(entry.level), namespace: entry.namespace, message: messageText(content.message, secrets), fields });
    } catch {
      // A failing log sink must never break the client it logs for.
    }
  };
}
