import { isAbsolute } from 'node:path';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { z } from 'zod';
import { configIssues, invalidConfiguration } from './config.js';
import { advertisedUrlProblem } from './ops/advertise.js';
import type { OutputOf } from './schema.js';
import type { KafkaSaslOptions } from './transport/kafka/index.js';
import type { GroupProtocol } from './transport/platformatic/index.js';
import { KAFKA_CLIENTS, type KafkaClient } from './transport/select.js';

const GROUP_PROTOCOLS = ['classic', 'consumer'] as const satisfies readonly GroupProtocol[];

/** The environment a service is read from: `process.env`, or a plain object in tests. */
export type Environment = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'] as const;

const brokers = z
  .string({ error: 'required: comma-separated host:port list' })
  .transform((s) =>
    s
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
  )
  .refine((list) => list.length > 0 && list.every((b) => /^[^:\s]+:\d+$/.test(b)), 'expected host:port[,host:port…]');

/** Where every HTTP server of a service binds unless its `*_HOST` says otherwise: loopback only. */
export const DEFAULT_HTTP_HOST = '127.0.0.1';

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * The address an HTTP server binds (`OPS_HOST`, feed-cache's `HTTP_HOST`): an IPv4 or IPv6 address (`127.0.0.1`,
 * `0.0.0.0`, `::`, `::1`) or a host name, default {@link DEFAULT_HTTP_HOST}. Loopback unless set: a container
 * sets `0.0.0.0` explicitly. A bad value is named without being echoed.
 *
 * @example const Own = z.object({ HTTP_HOST: httpHost(), HTTP_PORT: httpPort(8080) });
 */
export function httpHost(fallback: string = DEFAULT_HTTP_HOST) {
  return z
    .string()
    .trim()
    .refine((host) => isIP(host) !== 0 || HOST_NAME.test(host), 'expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name')
    .default(fallback);
}

/** A TCP port to listen on, 0 for a free one, default `fallback`. */
export function httpPort(fallback: number) {
  return z.coerce
    .number({ error: 'expected a port number' })
    .int('expected a whole port number')
    .min(0, 'expected a port within 0..65535')
    .max(65_535, 'expected a port within 0..65535')
    .default(fallback);
}

/** `on`/`off` (also `true`/`false`, `1`/`0`, `yes`/`no`), so a container's `KAFKA_TLS=1` reads as it looks. */
const onOff = z
  .string()
  .transform((text, ctx) => {
    const value = text.trim().toLowerCase();
    if (['on', 'true', '1', 'yes'].includes(value)) return true;
    if (['off', 'false', '0', 'no'].includes(value)) return false;
    ctx.addIssue({ code: 'custom', message: 'expected on or off' });
    return z.NEVER;
  })
  .optional();

/** A PEM file named by a variable, read once at start. */
export interface PemFile {
  readonly path: string;
  readonly contents: Buffer;
}

/** What a PEM file of each kind must contain: a TLS option that gets a DER file or the wrong PEM fails at start. */
const PEM_KINDS = {
  certificate: { pattern: /-----BEGIN CERTIFICATE-----/, expected: 'a PEM certificate (-----BEGIN CERTIFICATE-----)' },
  key: { pattern: /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/, expected: 'an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)' },
} as const;

/**
 * A file path read at start: a missing or unreadable file is a configuration error naming the variable and the
 * reason (e.g. ENOENT), and so is a file that is not the PEM it should be (a DER file, a key given as the CA, an
 * encrypted key); the path and the contents are never echoed.
 */
const pemFile = (kind: keyof typeof PEM_KINDS) =>
  z
    .string()
    .min(1, 'must not be empty when set')
    .transform((path, ctx): PemFile => {
      let contents: Buffer;
      try {
        contents = readFileSync(path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        ctx.addIssue({ code: 'custom', message: `cannot read the file (${code}${code === 'ENOENT' ? ': no such file' : ''})` });
        return z.NEVER;
      }
      if (!PEM_KINDS[kind].pattern.test(contents.toString('latin1'))) {
        ctx.addIssue({ code: 'custom', message: `the file is not ${PEM_KINDS[kind].expected}` });
        return z.NEVER;
      }
      return { path, contents };
    })
    .optional();

const secret = z.string().min(1, 'must not be empty when set').optional();

/** Reads a token file: trimmed, and empty counts as unreadable (a token agent that has not written it yet). */
function readTokenFile(path: string): string {
  const token = readFileSync(path, 'utf8').trim();
  if (token.length === 0) throw Object.assign(new Error('the file is empty'), { code: 'EMPTY' });
  return token;
}

/**
 * A variable naming a file that {@link readTokenFile} must read at start: `read` turns its path (and the
 * contents) into the variable's value; an unreadable or empty file is an issue naming the error code, never
 * the contents.
 */
function readableFile<T>(read: (path: string, contents: string) => T) {
  return z
    .string()
    .min(1, 'must not be empty when set')
    .transform((path, ctx): T => {
      try {
        return read(path, readTokenFile(path));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        const reason = code === 'ENOENT' ? ': no such file' : code === 'EMPTY' ? ': the file is empty' : '';
        ctx.addIssue({ code: 'custom', message: `cannot read the file (${code}${reason})` });
        return z.NEVER;
      }
    })
    .optional();
}

/** A password file named by a variable (a mounted secret): read once at start, trimmed; never echoed. */
const passwordFile = readableFile((_path, password) => password);

/** A token file named by a variable: read once at start to check it, then again on every authentication. */
export interface TokenFile {
  readonly path: string;
}

const tokenFile = readableFile((path): TokenFile => ({ path }));

/**
 * The variables every service reads, whatever it does. Kept flat and named like the variables so a service's
 * whole configuration is one object of `NAME: value` and its error names the variable to fix.
 */
function serviceEnvironmentSchema(id: string) {
  return z.object({
    KAFKA_BROKERS: brokers,
    /** The Kafka client: `kafkajs` (default) or `platformatic` (@platformatic/kafka). */
    KAFKA_CLIENT: z.enum(KAFKA_CLIENTS, { error: `expected one of ${KAFKA_CLIENTS.join(', ')}` }).default('kafkajs'),
    /** The consumer group protocol (platformatic only): `classic` (default) or `consumer` (KIP-848, Kafka 4.x). */
    KAFKA_GROUP_PROTOCOL: z.enum(GROUP_PROTOCOLS, { error: `expected one of ${GROUP_PROTOCOLS.join(', ')}` }).optional(),
    /** Client id sent to the brokers; default the service id. */
    KAFKA_CLIENT_ID: z.string().min(1, 'must not be empty when set').optional(),
    KAFKA_GROUP_ID: z.string().min(1).default(id),
    /** TLS to the brokers; on by default once a TLS file is given. */
    KAFKA_TLS: onOff,
    KAFKA_TLS_CA_FILE: pemFile('certificate'),
    KAFKA_TLS_CERT_FILE: pemFile('certificate'),
    KAFKA_TLS_KEY_FILE: pemFile('key'),
    KAFKA_SASL_MECHANISM: z.enum(SASL_MECHANISMS, { error: `expected one of ${SASL_MECHANISMS.join(', ')}` }).optional(),
    KAFKA_SASL_USERNAME: secret,
    /** Never logged, never echoed in errors. */
    KAFKA_SASL_PASSWORD: secret,
    /** The password from a file (a mounted secret) instead of the environment, read at start. */
    KAFKA_SASL_PASSWORD_FILE: passwordFile,
    /** OAUTHBEARER: the token itself, or (better) a file holding it, read again on every authentication. */
    KAFKA_SASL_OAUTHBEARER_TOKEN: secret,
    KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: tokenFile,
    OPS_PORT: httpPort(9464),
    /** Address the ops server binds: loopback unless set (containers set 0.0.0.0). */
    OPS_HOST: httpHost(),
    /**
     * The ops server's address as the other instances reach it, advertised to the group for table queries
     * (`advertisedUrl`); unset: `http://<OPS_HOST>:<port>`, the host name when OPS_HOST is a wildcard.
     */
    OPS_ADVERTISED_URL: z
      .string()
      .trim()
      .superRefine((url, ctx) => {
        const problem = advertisedUrlProblem(url);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    /**
     * An absolute directory the instance alone writes: its tables are kept there too (LMDB, the app's
     * `stateDir`) and a restart restores only their changelogs' tails. Unset: tables in memory only.
     */
    STATE_DIR: z
      .string()
      .trim()
      .refine((dir) => isAbsolute(dir), 'expected an absolute directory path')
      .optional(),
    LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
    /** A record unfinished this long fails `/healthz` (the app's `stuckAfterMs`); unset keeps the app's default (5 minutes). */
    STUCK_AFTER_MS: z.coerce
      .number({ error: 'expected a number of milliseconds' })
      .int('expected a whole number of milliseconds')
      .positive('must be positive')
      .optional(),
  });
}

/** Whether a variable is set (an empty value counts: the schema names it as empty). */
const isSet = (env: Environment, name: string): boolean => env[name] !== undefined;

/**
 * The variables that only make sense together. Checked on the raw environment, next to the schema rather than in
 * it, so they are named in the same error as every other bad variable (a zod refinement would wait for the rest).
 */
function pairingProblems(env: Environment): string[] {
  const problems: string[] = [];
  const tlsFiles = ['KAFKA_TLS_CA_FILE', 'KAFKA_TLS_CERT_FILE', 'KAFKA_TLS_KEY_FILE'] as const;
  if (onOff.safeParse(env.KAFKA_TLS).data === false) {
    for (const name of tlsFiles) if (isSet(env, name)) problems.push(`${name}: set while KAFKA_TLS is off`);
  }
  if (isSet(env, 'KAFKA_TLS_CERT_FILE') !== isSet(env, 'KAFKA_TLS_KEY_FILE')) {
    const [missing, other] = isSet(env, 'KAFKA_TLS_CERT_FILE') ? ['KAFKA_TLS_KEY_FILE', 'KAFKA_TLS_CERT_FILE'] : ['KAFKA_TLS_CERT_FILE', 'KAFKA_TLS_KEY_FILE'];
    problems.push(`${missing}: required when ${other} is set (a client certificate needs its key)`);
  }
  if (env.KAFKA_GROUP_PROTOCOL === 'consumer' && env.KAFKA_CLIENT !== 'platformatic')
    problems.push('KAFKA_GROUP_PROTOCOL: consumer (KIP-848) needs KAFKA_CLIENT=platformatic (kafkajs has the classic group protocol only)');
  const passwords = ['KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE'] as const;
  const credentials = ['KAFKA_SASL_USERNAME', ...passwords] as const;
  const tokens = ['KAFKA_SASL_OAUTHBEARER_TOKEN', 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE'] as const;
  const hasUser = isSet(env, 'KAFKA_SASL_USERNAME');
  const hasPassword = passwords.some((name) => isSet(env, name));
  if (passwords.every((name) => isSet(env, name))) problems.push('KAFKA_SASL_PASSWORD: set together with KAFKA_SASL_PASSWORD_FILE; set one');
  const mechanism = env.KAFKA_SASL_MECHANISM;
  if (mechanism === undefined) {
    for (const name of [...credentials, ...tokens])
      if (isSet(env, name)) problems.push(`KAFKA_SASL_MECHANISM: required with SASL, as ${name} is set (one of ${SASL_MECHANISMS.join(', ')})`);
    if (hasUser && !hasPassword) problems.push('KAFKA_SASL_PASSWORD: required with SASL (username and password go together; or KAFKA_SASL_PASSWORD_FILE)');
    if (hasPassword && !hasUser) problems.push('KAFKA_SASL_USERNAME: required with SASL (username and password go together)');
  } else if (mechanism === 'oauthbearer') {
    for (const name of credentials) if (isSet(env, name)) problems.push(`${name}: not used with KAFKA_SASL_MECHANISM=oauthbearer (it takes a token)`);
    const given = tokens.filter((name) => isSet(env, name));
    if (given.length === 0)
      problems.push('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: required with KAFKA_SASL_MECHANISM=oauthbearer (or KAFKA_SASL_OAUTHBEARER_TOKEN)');
    if (given.length === 2) problems.push('KAFKA_SASL_OAUTHBEARER_TOKEN: set together with KAFKA_SASL_OAUTHBEARER_TOKEN_FILE; set one');
  } else if ((SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    if (!hasUser) problems.push(`KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=${mechanism} (username and password go together)`);
    if (!hasPassword)
      problems.push(`KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM=${mechanism} (username and password go together; or KAFKA_SASL_PASSWORD_FILE)`);
    for (const name of tokens) if (isSet(env, name)) problems.push(`${name}: only used with KAFKA_SASL_MECHANISM=oauthbearer`);
  }
  return problems;
}

/** The shared part of every service's configuration, as {@link loadServiceConfig} returns it. */
export type ServiceEnvironment = z.output<ReturnType<typeof serviceEnvironmentSchema>>;

/** A service's whole configuration: the shared variables plus those of its own schema. */
export type ServiceConfig<S extends StandardSchemaV1 = StandardSchemaV1<Environment, object>> = Readonly<ServiceEnvironment & OutputOf<S>>;

/**
 * Reads a service's configuration, once, into a frozen object: the variables every service shares
 * ({@link ServiceEnvironment}: KAFKA_*, OPS_*, LOG_LEVEL, STUCK_AFTER_MS) and those of the service's own `schema`. A bad
 * environment throws one {@link StreamError} (`CONFIG_INVALID`) naming every bad variable, the shared ones
 * first; values (passwords, tokens, file paths) are never echoed. TLS files are read here, so a missing file
 * fails the start rather than the first connection.
 *
 * @example
 * const config = loadServiceConfig('feed-cache', z.object({ REDIS_URL: z.url() }));
 * config.KAFKA_BROKERS; // ['127.0.0.1:9092']
 */
export function loadServiceConfig<S extends StandardSchemaV1>(id: string, schema: S, env: Environment = process.env): ServiceConfig<S> {
  const shared = configIssues(serviceEnvironmentSchema(id), env);
  const own = configIssues(schema, env);
  const problems = [...shared.problems, ...pairingProblems(env), ...own.problems];
  if (problems.length > 0) throw invalidConfiguration(problems);
  return Object.freeze({ ...(own.value as object), ...(shared.value as ServiceEnvironment) }) as ServiceConfig<S>;
}

/** How a service connects to Kafka, from its {@link ServiceEnvironment}. */
export interface KafkaConnection {
  /** The Kafka client the transport is built on (KAFKA_CLIENT). */
  readonly client: KafkaClient;
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly groupId: string;
  /** The consumer group protocol (KAFKA_GROUP_PROTOCOL); unset: the transport's default, classic. */
  readonly groupProtocol?: GroupProtocol;
  readonly ssl?: boolean | ConnectionOptions;
  readonly sasl?: KafkaSaslOptions;
}

function saslOf(env: KafkaEnvironment): KafkaSaslOptions | undefined {
  const mechanism = env.KAFKA_SASL_MECHANISM;
  if (mechanism === undefined) return undefined;
  if (mechanism === 'oauthbearer') {
    const file = env.KAFKA_SASL_OAUTHBEARER_TOKEN_FILE;
    const token = env.KAFKA_SASL_OAUTHBEARER_TOKEN;
    if (file) return { mechanism, token: () => readTokenFile(file.path) };
    return token ? { mechanism, token: () => token } : undefined;
  }
  const password = env.KAFKA_SASL_PASSWORD ?? env.KAFKA_SASL_PASSWORD_FILE;
  return env.KAFKA_SASL_USERNAME && password ? { mechanism, username: env.KAFKA_SASL_USERNAME, password } : undefined;
}

const KAFKA_VARIABLES = {
  KAFKA_BROKERS: true,
  KAFKA_CLIENT: true,
  KAFKA_CLIENT_ID: true,
  KAFKA_GROUP_ID: true,
  KAFKA_GROUP_PROTOCOL: true,
  KAFKA_TLS: true,
  KAFKA_TLS_CA_FILE: true,
  KAFKA_TLS_CERT_FILE: true,
  KAFKA_TLS_KEY_FILE: true,
  KAFKA_SASL_MECHANISM: true,
  KAFKA_SASL_USERNAME: true,
  KAFKA_SASL_PASSWORD: true,
  KAFKA_SASL_PASSWORD_FILE: true,
  KAFKA_SASL_OAUTHBEARER_TOKEN: true,
  KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: true,
} as const;

/** The KAFKA_* part of the shared environment. */
export type KafkaEnvironment = Pick<ServiceEnvironment, keyof typeof KAFKA_VARIABLES>;

/**
 * Reads and checks only the KAFKA_* variables, as every service does (same names, same errors, values never
 * echoed), for tools that connect to Kafka without being a service (the `stream` CLI).
 *
 * @example const kafka = loadKafkaConnection('stream-cli', { ...process.env, KAFKA_BROKERS: '127.0.0.1:9095' });
 */
export function loadKafkaConnection(id: string, env: Environment = process.env): KafkaConnection {
  const { value, problems } = configIssues(serviceEnvironmentSchema(id).pick(KAFKA_VARIABLES), env);
  const all = [...problems, ...pairingProblems(env)];
  if (all.length > 0) throw invalidConfiguration(all);
  return kafkaConnection(id, value as KafkaEnvironment);
}

/** The Kafka part of a service's configuration in the shape the transport takes (TLS files already read). */
export function kafkaConnection(id: string, env: KafkaEnvironment): KafkaConnection {
  const files = env.KAFKA_TLS_CA_FILE ?? env.KAFKA_TLS_CERT_FILE ?? env.KAFKA_TLS_KEY_FILE;
  const tls = env.KAFKA_TLS ?? files !== undefined;
  const ssl: boolean | ConnectionOptions | undefined = !tls
    ? undefined
    : files === undefined
      ? true
      : {
          ...(env.KAFKA_TLS_CA_FILE ? { ca: env.KAFKA_TLS_CA_FILE.contents } : {}),
          ...(env.KAFKA_TLS_CERT_FILE ? { cert: env.KAFKA_TLS_CERT_FILE.contents } : {}),
          ...(env.KAFKA_TLS_KEY_FILE ? { key: env.KAFKA_TLS_KEY_FILE.contents } : {}),
        };
  const sasl = saslOf(env);
  return {
    client: env.KAFKA_CLIENT,
    brokers: env.KAFKA_BROKERS,
    clientId: env.KAFKA_CLIENT_ID ?? id,
    groupId: env.KAFKA_GROUP_ID,
    ...(env.KAFKA_GROUP_PROTOCOL === undefined ? {} : { groupProtocol: env.KAFKA_GROUP_PROTOCOL }),
    ...(ssl === undefined ? {} : { ssl }),
    ...(sasl === undefined ? {} : { sasl }),
  };
}
