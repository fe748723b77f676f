import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { App } from '../app.js';
import { toError } from '../errors.js';
import { stuckRecords } from '../health.js';
import type { RuntimeMetrics } from './metrics.js';
import { defaultAdvertisedUrl } from './advertise.js';
import { answerTableQuery } from './tables.js';

/** A named dependency check for `/readyz` (Redis reachable, …). Resolve true when ready. */
export type ReadinessCheck = () => Promise<boolean>;

export interface OpsServerOptions {
  readonly app: App;
  readonly metrics: RuntimeMetrics;
  readonly port: number;
  /** Address to bind. Default 127.0.0.1 (loopback): a container sets `0.0.0.0` explicitly (`OPS_HOST`). */
  readonly host?: string;
  /** Dependency checks for `/readyz`, by name. Each is given 1 s. */
  readonly readiness?: Readonly<Record<string, ReadinessCheck>>;
  /**
   * `/healthz` fails when a record has been unfinished longer than this. Default the app's `stuckAfterMs`
   * (5 minutes unless set).
   */
  readonly stuckAfterMs?: number;
  /** `/healthz` fails when the event loop's p99 delay over the last interval exceeds this. Default 5 s. */
  readonly maxEventLoopDelayMs?: number;
}

/** Where the ops server binds unless told otherwise: loopback, so nothing outside the host reaches it by accident. */
export const DEFAULT_OPS_HOST = '127.0.0.1';

/**
 * What `/healthz` says about an app's failure: its class (and a StreamError's code), never its message, which
 * may name brokers, hosts or paths. The message is in the app's log (`consumer stopped for good`, the start error).
 */
export function failureClass(error: Error | undefined): string {
  if (!error) return 'unknown';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,40}$/.test(code) ? `${error.name} ${code}` : error.name;
}

/** A running ops server. */
export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

async function timed(check: ReadinessCheck, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([check(), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Serves `/healthz` (alive: event loop responsive, no agent stuck, app not failed), `/readyz` (running,
 * joined the group, dependencies answering), `/metrics` (Prometheus) and `/tables/<table>/<key>` (a table's
 * value, or a redirect to the instance holding it) for one app. Started before the app, its address
 * (`http://<host>:<port>`) is what the app advertises to its group unless `advertisedUrl` says otherwise.
 *
 * @example
 * const ops = await startOpsServer({ app, metrics, port: 9464, readiness: { redis: async () => (await redis.ping()) === 'PONG' } });
 * app.onStop(() => ops.close());
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { app, metrics } = options;
  const stuckAfterMs = options.stuckAfterMs;
  const maxDelayMs = options.maxEventLoopDelayMs ?? 5000;
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  let loopP99Ms = 0;
  const sampler = setInterval(() => {
    loopP99Ms = loop.percentile(99) / 1e6;
    loop.reset();
  }, 5000);
  sampler.unref();

  const health = () => {
    const problems: string[] = [];
    if (app.state === 'failed') problems.push(`app failed (${failureClass(app.failure)}): see the service's log`);
    if (loopP99Ms > maxDelayMs) problems.push(`event loop delay p99 ${Math.round(loopP99Ms)} ms`);
    const health = app.health();
    const stuck = stuckAfterMs === undefined ? health.stuck : stuckRecords(health.partitions, stuckAfterMs);
    for (const r of stuck) {
      problems.push(`agent ${r.agent}: record ${r.topic}/${r.partition} offset ${r.offset} unfinished for ${Math.round(r.ageMs / 1000)} s`);
    }
    return problems;
  };

  const readiness = async () => {
    const problems: string[] = [];
    if (!app.ready) problems.push(`app is ${app.state}${app.state === 'running' ? ', not yet in its group or restoring tables' : ''}`);
    // The app's dependency checks (app.dependency) and the server's own, the latter winning on a name.
    const checks = [...new Map([...app.dependencyChecks, ...Object.entries(options.readiness ?? {})])];
    const results = await Promise.all(checks.map(async ([name, check]) => [name, await timed(check, 1000)] as const));
    for (const [name, ok] of results) if (!ok) problems.push(`${name} not reachable`);
    for (const agent of app.health().agents)
      for (const down of agent.dependenciesDown)
        problems.push(`agent ${agent.name} waits for ${down.dependency} (unavailable for ${Math.round((Date.now() - down.since) / 1000)} s)`);
    return problems;
  };

  // Slow clients are cut off: an ops endpoint answers at once or not at all.
  const server: Server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => {
    const reply = (status: number, body: string, type = 'application/json', headers: Readonly<Record<string, string>> = {}) => {
      res.writeHead(status, { ...headers, 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    void (async () => {
      try {
        if (req.method !== 'GET') return reply(405, JSON.stringify({ error: 'method not allowed' }));
        if (path === '/healthz' || path === '/livez') {
          const problems = health();
          return reply(problems.length ? 503 : 200, JSON.stringify({ status: problems.length ? 'unhealthy' : 'ok', problems }));
        }
        if (path === '/readyz') {
          const problems = await readiness();
          return reply(problems.length ? 503 : 200, JSON.stringify({ status: problems.length ? 'not ready' : 'ready', problems }));
        }
        if (path === '/metrics') return reply(200, await metrics.registry.metrics(), metrics.registry.contentType);
        if (path.startsWith('/tables/')) {
          const answer = await answerTableQuery(app, path);
          return reply(answer.status, JSON.stringify(answer.body), 'application/json', answer.headers);
        }
        return reply(404, JSON.stringify({ error: 'not found' }));
      } catch (error) {
        // The detail goes to the log; the answer says only that the endpoint failed.
        app.log.error({ err: toError(error), path }, 'ops endpoint failed');
        reply(500, JSON.stringify({ error: 'internal error' }));
      }
    })();
  });
  // CONNECT and Upgrade requests bypass the handler (Node would drop the connection without a word): a 405.
  const refuse = (_req: unknown, socket: Duplex) => {
    if (!socket.destroyed) socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  };
  server.on('connect', refuse);
  server.on('upgrade', refuse);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? DEFAULT_OPS_HOST, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  // Table queries are redirected to this server: the app publishes its address when it joins its group.
  // A host name that makes no URL (an odd machine name) costs the redirects, never the ops server.
  let advertised = false;
  try {
    advertised = app.adoptAdvertisedUrl(defaultAdvertisedUrl(options.host ?? DEFAULT_OPS_HOST, port));
  } catch (error) {
    app.log.warn({ err: toError(error) }, 'the ops server address cannot be advertised: set advertisedUrl (OPS_ADVERTISED_URL)');
  }
  if (!advertised && app.advertisedUrl === undefined && app.state !== 'created') {
    app.log.warn(
      'the ops server started after the app joined its group: this instance advertises no address, table queries for its partitions cannot be redirected here',
    );
  }
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(sampler);
        loop.disable();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
