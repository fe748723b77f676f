import { App, type AppOptions } from './app.js';
import { toError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { RuntimeMetrics } from './ops/metrics.js';
import { startOpsServer, type ReadinessCheck } from './ops/server.js';

/** Options of {@link createService}: an app, plus its ops endpoints and logging. */
export interface ServiceOptions extends Omit<AppOptions, 'instrumentation' | 'logger'> {
  /** Port of `/healthz`, `/readyz` and `/metrics`; 0 picks a free one; null turns the ops server off. */
  readonly opsPort: number | null;
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
  /** Adds a dependency check to `/readyz` (before `run()`). */
  readiness(name: string, check: ReadinessCheck): void;
  /** Starts the ops server and the app; returns when the app stopped (SIGTERM/SIGINT), exit code set. */
  run(): Promise<void>;
}

/**
 * Builds the app of a service with everything production needs, so a service's `main.ts` stays wiring only.
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
  const checks: Record<string, ReadinessCheck> = {};
  let opsPort: number | undefined;
  return {
    app,
    metrics,
    log,
    get opsPort() {
      return opsPort;
    },
    readiness(name, check) {
      checks[name] = check;
    },
    async run() {
      if (options.opsPort !== null) {
        try {
          const ops = await startOpsServer({ app, metrics, port: options.opsPort, readiness: checks });
          app.onStop(() => ops.close());
          opsPort = ops.port;
          log.info({ port: ops.port }, 'ops server listening');
        } catch (error) {
          log.fatal({ err: toError(error) }, 'cannot start the ops server');
          process.stderr.write(`${options.id}: cannot start the ops server on port ${options.opsPort}: ${toError(error).message}\n`);
          process.exitCode = 1;
          return;
        }
      }
      await app.run();
    },
  };
}
