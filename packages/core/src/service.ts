import type { StandardSchemaV1 } from '@standard-schema/spec';
import { App, type AppOptions } from './app.js';
import { toError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { RuntimeMetrics } from './ops/metrics.js';
import { DEFAULT_OPS_HOST, startOpsServer, type ReadinessCheck } from './ops/server.js';
import { kafkaConnection, loadServiceConfig, type Environment, type ServiceConfig } from './service-config.js';

/** Options of {@link createService}: an app, plus its ops endpoints and logging. */
export interface ServiceOptions extends Omit<AppOptions, 'instrumentation' | 'logger'> {
  /** Port of `/healthz`, `/readyz` and `/metrics`; 0 picks a free one; null turns the ops server off. */
  readonly opsPort: number | null;
  /** Address the ops server binds; default 127.0.0.1 (loopback only). Containers set `0.0.0.0` (`OPS_HOST`). */
  readonly opsHost?: string;
  readonly logLevel?: string;
  readonly logger?: Logger;
}

/** An app wired for production: JSON logs, Prometheus metrics, ops server, graceful shutdown. */
export interface Service {
  readonly app: App;
  readonly metrics: RuntimeMetrics;
  readonly log: Logger;
  /** The ops server's port once `run()` started it (useful with `opsPort: 0`). */
  readonly opsPort: number | undefined;
  /** Adds a dependency check (see `app.dependency`): `/readyz` runs it, and agents waiting for the dependency ask it (before `run()`). */
  readiness(name: string, check: ReadinessCheck): void;
  /** Starts the ops server and the app; returns when the app stopped (SIGTERM/SIGINT), exit code set. */
  run(): Promise<void>;
}

/**
 * Builds the app of a service with everything production needs, so a service's `main.ts` stays wiring only.
 * {@link defineService} calls it with what the environment says; call it yourself to pick every option in code.
 *
 * @example
 * const service = createService({ id: 'feed-cache', brokers: config.KAFKA_BROKERS, opsPort: config.OPS_PORT });
 * service.readiness('redis', async () => (await redis.ping()) === 'PONG');
 * service.app.agent(feedActivities, handler);
 * await service.run();
 */
export function createService(options: ServiceOptions): Service {
  const log = options.logger ?? createLogger({ name: options.id, ...(options.logLevel ? { level: options.logLevel } : {}) });
  const metrics = new RuntimeMetrics();
  const app = new App({ ...options, logger: log, instrumentation: metrics });
  metrics.attach(app);
  let opsPort: number | undefined;
  return {
    app,
    metrics,
    log,
    get opsPort() {
      return opsPort;
    },
    readiness(name, check) {
      app.dependency(name, check);
    },
    async run() {
      if (options.opsPort !== null) {
        try {
          const ops = await startOpsServer({ app, metrics, port: options.opsPort, ...(options.opsHost ? { host: options.opsHost } : {}) });
          app.onStop(() => ops.close());
          opsPort = ops.port;
          log.info({ host: options.opsHost ?? DEFAULT_OPS_HOST, port: ops.port }, 'ops server listening');
        } catch (error) {
          log.fatal({ err: toError(error) }, 'cannot start the ops server');
          process.stderr.write(
            `${options.id}: cannot start the ops server on ${options.opsHost ?? DEFAULT_OPS_HOST}:${options.opsPort}: ${toError(error).message}\n`,
          );
          process.exitCode = 1;
          return;
        }
      }
      await app.run();
    },
  };
}

/**
 * App options a service sets in code; brokers, group, client id, TLS, SASL, ops port and log level come from the
 * environment, and so do `stuckAfterMs` when `STUCK_AFTER_MS` is set and `stateDir` when `STATE_DIR` is.
 */
export type ServiceShellOptions = Omit<
  ServiceOptions,
  'id' | 'brokers' | 'transport' | 'groupId' | 'clientId' | 'opsPort' | 'opsHost' | 'advertisedUrl' | 'logLevel'
> & {
  /** Where the configuration is read from; default `process.env`. */
  readonly env?: Environment;
};

/** Wires a service's clients and agents into its {@link Service}, once its configuration is read. */
export type ServiceWiring<S extends StandardSchemaV1> = (config: ServiceConfig<S>, service: Service) => void | Promise<void>;

/** A service: its id and the schema of its own variables, ready to read its configuration and run. */
export interface ServiceDefinition<S extends StandardSchemaV1> {
  readonly id: string;
  /** The service's own variables; the shared ones (KAFKA_*, OPS_*, LOG_LEVEL) come with every service. */
  readonly schema: S;
  /** Reads the shared and the service's own variables; throws one `CONFIG_INVALID` error naming every bad one. */
  readConfig(env?: Environment): ServiceConfig<S>;
  /** Builds the {@link Service} a configuration describes (brokers, TLS, SASL, group, ops server, log level). */
  create(config: ServiceConfig<S>, options?: ServiceShellOptions): Service;
  /**
   * Reads the configuration, builds the service, lets `wire` add clients, readiness checks and agents, and runs
   * until SIGTERM/SIGINT. A bad environment prints `<id>: <message>` to stderr and exits 1.
   */
  run(wire: ServiceWiring<S>): Promise<void>;
  run(options: ServiceShellOptions, wire: ServiceWiring<S>): Promise<void>;
}

/**
 * Defines a service by its id and the zod (or any Standard Schema) object of its own variables, so its
 * `main.ts` is wiring only.
 *
 * @example
 * export const feedCache = defineService('feed-cache', z.object({ REDIS_URL: z.url() }));
 * await feedCache.run((config, service) => {
 *   service.app.agent(feedActivities, handler);
 * });
 */
export function defineService<S extends StandardSchemaV1>(id: string, schema: S): ServiceDefinition<S> {
  const readConfig = (env: Environment = process.env): ServiceConfig<S> => loadServiceConfig(id, schema, env);
  const create = (config: ServiceConfig<S>, options: ServiceShellOptions = {}): Service => {
    const { env: _env, ...appOptions } = options;
    const kafka = kafkaConnection(id, config);
    return createService({
      ...appOptions,
      id,
      transport: kafka.client,
      brokers: kafka.brokers,
      groupId: kafka.groupId,
      clientId: kafka.clientId,
      kafka: {
        ...appOptions.kafka,
        ...(kafka.groupProtocol === undefined ? {} : { groupProtocol: kafka.groupProtocol }),
        ...(kafka.ssl === undefined ? {} : { ssl: kafka.ssl }),
        ...(kafka.sasl === undefined ? {} : { sasl: kafka.sasl }),
      },
      opsPort: config.OPS_PORT,
      opsHost: config.OPS_HOST,
      ...(config.OPS_ADVERTISED_URL === undefined ? {} : { advertisedUrl: config.OPS_ADVERTISED_URL }),
      logLevel: config.LOG_LEVEL,
      ...(config.STUCK_AFTER_MS === undefined ? {} : { stuckAfterMs: config.STUCK_AFTER_MS }),
      ...(config.STATE_DIR === undefined ? {} : { stateDir: config.STATE_DIR }),
    });
  };
  async function run(optionsOrWire: ServiceShellOptions | ServiceWiring<S>, maybeWire?: ServiceWiring<S>): Promise<void> {
    const [options, wire] = typeof optionsOrWire === 'function' ? [{}, optionsOrWire] : [optionsOrWire, maybeWire];
    if (!wire) throw new TypeError(`${id}: run() needs a wiring function`);
    let config: ServiceConfig<S>;
    try {
      config = readConfig(options.env);
    } catch (error) {
      process.stderr.write(`${id}: ${toError(error).message}\n`);
      process.exit(1);
    }
    const service = create(config, options);
    await wire(config, service);
    await service.run();
  }
  return { id, schema, readConfig, create, run };
}
