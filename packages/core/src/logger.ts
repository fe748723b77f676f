import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';

/** The structured logger used everywhere (pino). Child loggers carry agent, topic and partition. */
export type Logger = PinoLogger;

/**
 * Paths redacted from every log line: credentials in configs, clients' options and headers. A log line
 * that mentions a secret shows `[redacted]` instead.
 */
export const REDACT_PATHS: readonly string[] = [
  'password', '*.password', '*.*.password',
  'token', '*.token', '*.*.token',
  'apiKey', '*.apiKey', '*.*.apiKey',
  'sasl', '*.sasl',
  'authorization', '*.authorization', '*.*.authorization', 'headers.authorization', '*.headers.authorization',
  'Authorization', '*.Authorization', '*.headers.Authorization',
  // HTTP clients' errors (got, fetch wrappers) carry their request options, headers included.
  '*.options.headers.authorization', '*.options.headers.Authorization', '*.request.options.headers.authorization',
  '*.config.headers.authorization', '*.config.headers.Authorization',
  'secret', '*.secret',
];

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
  };
  return options.destination ? pino(config, options.destination as pino.DestinationStream) : pino(config);
}

/** A logger that drops everything (tests that do not care about logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
