import { readFileSync } from 'node:fs';
import { killService, startService, stopService, waitReady, type RunningService } from '@stream/local-stack';

export const SERVICES = ['feed-cache', 'order-emailer', 'execution-quality', 'search-enricher'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface FleetOptions {
  readonly repo: string;
  /** Server locations (KAFKA_BROKERS, REDIS_URL, …). */
  readonly serverEnv: Record<string, string>;
  /** Consumer groups are `<service>-<groupSuffix>`: each fault starts from its own fresh groups. */
  readonly groupSuffix: string;
  readonly emailUrl: string;
  readonly emailToken: string;
  readonly searchIndex: string;
  readonly logDir: string;
  /** First port handed out to instances' ops and HTTP servers. */
  readonly portBase: number;
}

/** How a SIGTERM ended. */
export interface Termination {
  readonly code: number | null;
  readonly ms: number;
}

/** The four services as separate processes, several instances each when asked, started, killed and restarted. */
export class Fleet {
  readonly #options: FleetOptions;
  readonly #instances = new Map<ServiceName, RunningService[]>(SERVICES.map((s) => [s, []]));
  #nextPort: number;
  #started = 0;

  constructor(options: FleetOptions) {
    this.#options = options;
    this.#nextPort = options.portBase;
  }

  #env(name: ServiceName, opsPort: number): Record<string, string> {
    const o = this.#options;
    const common = { ...o.serverEnv, KAFKA_GROUP_ID: `${name}-${o.groupSuffix}`, OPS_PORT: String(opsPort), LOG_LEVEL: 'warn' };
    switch (name) {
      case 'feed-cache':
        // Feeds keep every activity of a run, so the checker can find each one.
        return { ...common, FEED_MAX_ITEMS: '100000', HTTP_PORT: String(this.#nextPort++) };
      case 'order-emailer':
        return { ...common, EMAILER_URL: o.emailUrl, EMAILER_TOKEN: o.emailToken };
      case 'execution-quality':
        // The load's execution times are spread over the half hour of market data in no order: a grace of an
        // hour keeps every order in its summary window instead of dead-lettering most as late.
        return { ...common, MARKET_LOOKBACK: '5m', SUMMARY_GRACE: '1h' };
      case 'search-enricher':
        return { ...common, SEARCH_INDEX: o.searchIndex, SEARCH_FIELDS: 'title^2,body' };
    }
  }

  /** Starts one more instance of `name` and waits until it is ready. */
  async start(name: ServiceName): Promise<RunningService> {
    const port = this.#nextPort++;
    this.#started += 1;
    const instance = startService(this.#options.repo, name, this.#env(name, port), this.#options.logDir, `${name}-${this.#started}`);
    this.#instances.get(name)!.push(instance);
    await waitReady(instance, 90_000);
    return instance;
  }

  instances(name: ServiceName): readonly RunningService[] {
    return this.#instances.get(name)!;
  }

  #take(name: ServiceName, index: number): RunningService {
    const list = this.#instances.get(name)!;
    const instance = list[index];
    if (!instance) throw new Error(`no instance ${index} of ${name}`);
    list.splice(index, 1);
    return instance;
  }

  /** SIGKILL of an instance (default the oldest): no drain, no commit, no goodbye. */
  async kill(name: ServiceName, index = 0): Promise<void> {
    await killService(this.#take(name, index));
  }

  /** SIGTERM of an instance: its exit code and how long it took to exit. */
  async terminate(name: ServiceName, index = 0): Promise<Termination> {
    const started = Date.now();
    const code = await stopService(this.#take(name, index), 45_000);
    return { code, ms: Date.now() - started };
  }

  /** Instances that exited (or were killed) without the fleet stopping them: none, unless a service crashed. */
  exited(): string[] {
    return SERVICES.flatMap((name) =>
      this.#instances
        .get(name)!
        .filter((i) => i.child.exitCode !== null || i.child.signalCode !== null)
        .map((i) => `${name} exited with ${i.child.exitCode ?? i.child.signalCode} (log ${i.logFile})`),
    );
  }

  /** Each running instance's peak resident set so far (`VmHWM` of /proc/<pid>/status), in MiB. */
  peakRssMiB(): { name: ServiceName; pid: number; mib: number }[] {
    const out: { name: ServiceName; pid: number; mib: number }[] = [];
    for (const name of SERVICES) {
      for (const instance of this.#instances.get(name)!) {
        const pid = instance.child.pid;
        if (pid === undefined) continue;
        try {
          const kib = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
          if (kib !== undefined) out.push({ name, pid, mib: Number(kib) / 1024 });
        } catch {
          // the process is gone: exited() reports it
        }
      }
    }
    return out;
  }

  /** SIGTERM to every instance; returns those that did not exit 0. */
  async stopAll(): Promise<string[]> {
    const failures: string[] = [];
    await Promise.all(
      SERVICES.flatMap((name) =>
        this.#instances
          .get(name)!
          .splice(0)
          .map(async (instance) => {
            const code = await stopService(instance, 45_000);
            if (code !== 0) failures.push(`${name} exited with ${code} (log ${instance.logFile})`);
          }),
      ),
    );
    return failures;
  }
}
