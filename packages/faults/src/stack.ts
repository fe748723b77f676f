import { stackCommand } from '@stream/local-stack';
import path from 'node:path';

/** A server of the local stack the suite may stop and start. */
export type StackServer = 'kafka' | 'redis' | 'influxdb' | 'elasticsearch';

/**
 * The suite's own stack instance: by default on ports shifted by 10,000 and in its own data directory, so it
 * can stop and wipe its servers while other work uses the main stack (default ports, /tmp/stream-stack).
 * Every `STACK_*` variable and `STREAM_STACK_DATA` that is set in the environment wins over these.
 */
const DEFAULTS = {
  STREAM_STACK_DATA: '/tmp/stream-faults-stack',
  STACK_KAFKA_PORT: '19092',
  STACK_KAFKA_CONTROLLER_PORT: '19093',
  STACK_KAFKA_SASL_PORT: '19094',
  STACK_KAFKA_TLS_PORT: '19095',
  STACK_REDIS_PORT: '16379',
  STACK_INFLUXDB_PORT: '18086',
  STACK_INFLUXDB_RPC_PORT: '18088',
  STACK_ELASTICSEARCH_PORT: '19200',
  STACK_ELASTICSEARCH_TRANSPORT_PORT: '19300',
  // Redis is stopped and started again mid-run: what the services wrote before must survive, as in production.
  STACK_REDIS_APPENDONLY: 'yes',
} as const;

/** The main stack's data directory, which this suite never touches. */
const MAIN_STACK_DATA = '/tmp/stream-stack';

export class FaultStack {
  readonly env: Readonly<Record<keyof typeof DEFAULTS, string>>;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const merged: Record<keyof typeof DEFAULTS, string> = { ...DEFAULTS };
    for (const name of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const value = env[name];
      if (value !== undefined && value !== '') merged[name] = value;
    }
    if (path.resolve(merged.STREAM_STACK_DATA) === MAIN_STACK_DATA || merged.STACK_KAFKA_PORT === '9092') {
      throw new Error(
        `the fault suite stops its servers: it refuses the main stack (${MAIN_STACK_DATA}, Kafka on 9092); set STREAM_STACK_DATA and STACK_*_PORT elsewhere`,
      );
    }
    this.env = merged;
  }

  /** Where the services and the checker find the servers. */
  serverEnv(): Record<string, string> {
    const e = this.env;
    return {
      KAFKA_BROKERS: `127.0.0.1:${e.STACK_KAFKA_PORT}`,
      KAFKA_SASL_BROKERS: `127.0.0.1:${e.STACK_KAFKA_SASL_PORT}`,
      KAFKA_TLS_BROKERS: `127.0.0.1:${e.STACK_KAFKA_TLS_PORT}`,
      REDIS_URL: `redis://127.0.0.1:${e.STACK_REDIS_PORT}`,
      INFLUX_URL: `http://127.0.0.1:${e.STACK_INFLUXDB_PORT}`,
      INFLUX_TOKEN: 'faults:faults',
      INFLUX_ORG: 'stream',
      INFLUX_BUCKET: 'stream/autogen',
      ELASTICSEARCH_URL: `http://127.0.0.1:${e.STACK_ELASTICSEARCH_PORT}`,
    };
  }

  /** `stack.sh up [--fresh] [servers…]`: starts and waits until healthy. */
  up(servers: readonly StackServer[] = [], options: { fresh?: boolean } = {}): Promise<void> {
    return this.#run(['up', ...(options.fresh ? ['--fresh'] : []), ...servers]);
  }

  /** `stack.sh down [servers…]`: SIGTERM to the server's process group, as an orderly stop would. */
  down(servers: readonly StackServer[] = []): Promise<void> {
    return this.#run(['down', ...servers]);
  }

  async #run(args: readonly string[]): Promise<void> {
    try {
      await stackCommand(args, { ...process.env, ...this.env });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`stack.sh ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-5).join(' | ')}`);
    }
  }
}
