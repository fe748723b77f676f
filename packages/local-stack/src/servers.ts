import net from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';

/** Where the local servers are. Defaults match `pnpm stack up`; override to use servers you already run. */
export interface LocalServers {
  /** Kafka bootstrap brokers (`KAFKA_BROKERS`, comma-separated host:port). */
  readonly kafkaBrokers: readonly string[];
  /** Kafka SASL/SCRAM listener (`KAFKA_SASL_BROKERS`) and its credentials, for the security tests. */
  readonly kafkaSaslBrokers: readonly string[];
  readonly kafkaScram: { readonly username: string; readonly password: string };
  /**
   * Kafka TLS + SASL listener (`KAFKA_TLS_BROKERS`; SCRAM-SHA-256/512, PLAIN and unsecured OAUTHBEARER, with the
   * {@link kafkaScram} user) and the PEM files of the CA the stack generated (`STACK_KAFKA_TLS_DIR`, default
   * `$STREAM_STACK_CACHE/kafka-tls`): its CA, a client certificate it signed, and a CA the broker does not trust.
   */
  readonly kafkaTls: {
    readonly brokers: readonly string[];
    readonly caFile: string;
    readonly clientCertFile: string;
    readonly clientKeyFile: string;
    readonly untrustedCaFile: string;
  };
  /** Redis URL (`REDIS_URL`). */
  readonly redisUrl: string;
  /** InfluxDB URL (`INFLUX_URL`), token (`INFLUX_TOKEN`, any value when auth is off) and org (`INFLUX_ORG`). */
  readonly influxUrl: string;
  readonly influxToken: string;
  readonly influxOrg: string;
  /** Elasticsearch URL (`ELASTICSEARCH_URL`). */
  readonly elasticsearchUrl: string;
}

function list(value: string | undefined, fallback: string): string[] {
  return (value ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function kafkaTlsFiles(env: NodeJS.ProcessEnv): LocalServers['kafkaTls'] {
  const dir = env.STACK_KAFKA_TLS_DIR || path.join(env.STREAM_STACK_CACHE || path.join(homedir(), '.cache', 'stream-stack'), 'kafka-tls');
  return {
    brokers: list(env.KAFKA_TLS_BROKERS, '127.0.0.1:9095'),
    caFile: path.join(dir, 'ca.crt'),
    clientCertFile: path.join(dir, 'client.crt'),
    clientKeyFile: path.join(dir, 'client.key'),
    untrustedCaFile: path.join(dir, 'untrusted-ca.crt'),
  };
}

/** Reads the server locations from the environment, falling back to the local stack's defaults. */
export function localServers(env: NodeJS.ProcessEnv = process.env): LocalServers {
  return {
    kafkaBrokers: list(env.KAFKA_BROKERS, '127.0.0.1:9092'),
    kafkaSaslBrokers: list(env.KAFKA_SASL_BROKERS, '127.0.0.1:9094'),
    kafkaScram: {
      username: env.KAFKA_SCRAM_USERNAME ?? 'stream-test',
      password: env.KAFKA_SCRAM_PASSWORD ?? 'stream-test-secret',
    },
    kafkaTls: kafkaTlsFiles(env),
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    influxUrl: env.INFLUX_URL ?? 'http://127.0.0.1:8086',
    influxToken: env.INFLUX_TOKEN ?? 'stream:stream',
    influxOrg: env.INFLUX_ORG ?? 'stream',
    elasticsearchUrl: env.ELASTICSEARCH_URL ?? 'http://127.0.0.1:9200',
  };
}

/** `kafka-tls` is the broker's TLS + SASL listener (`KAFKA_TLS_BROKERS`), for the security tests. */
export type ServerName = 'kafka' | 'kafka-tls' | 'redis' | 'influxdb' | 'elasticsearch';

function endpointOf(name: ServerName, servers: LocalServers): { host: string; port: number; shown: string; variable: string } {
  const fromUrl = (url: string, variable: string) => {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port), shown: url, variable };
  };
  switch (name) {
    case 'kafka': {
      const first = servers.kafkaBrokers[0] ?? '127.0.0.1:9092';
      const [host = '127.0.0.1', port = '9092'] = first.split(':');
      return { host, port: Number(port), shown: first, variable: 'KAFKA_BROKERS' };
    }
    case 'kafka-tls': {
      const first = servers.kafkaTls.brokers[0] ?? '127.0.0.1:9095';
      const [host = '127.0.0.1', port = '9095'] = first.split(':');
      return { host, port: Number(port), shown: first, variable: 'KAFKA_TLS_BROKERS' };
    }
    case 'redis':
      return fromUrl(servers.redisUrl, 'REDIS_URL');
    case 'influxdb':
      return fromUrl(servers.influxUrl, 'INFLUX_URL');
    case 'elasticsearch':
      return fromUrl(servers.elasticsearchUrl, 'ELASTICSEARCH_URL');
  }
}

/**
 * Fails fast, with the fix in the message, when a server a test needs is not listening.
 * Tests call it in `beforeAll` so a missing server is one clear failure, never a hang.
 *
 * @example
 * beforeAll(() => requireServers('kafka', 'redis'));
 */
export async function requireServers(...names: ServerName[]): Promise<void> {
  const servers = localServers();
  await Promise.all(
    names.map(async (name) => {
      const { host, port, shown, variable } = endpointOf(name, servers);
      const reachable = await new Promise<boolean>((resolve) => {
        const socket = net.connect({ host, port });
        socket.setTimeout(1000, () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('connect', () => {
          socket.end();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (!reachable) {
        const hint = name === 'kafka-tls' ? ' (a broker started before the stack had this listener needs `pnpm stack down kafka && pnpm stack up kafka`)' : '';
        throw new Error(`${name} is not reachable at ${shown}: run \`pnpm stack up\`${hint}, or point ${variable} at a running server`);
      }
    }),
  );
}
