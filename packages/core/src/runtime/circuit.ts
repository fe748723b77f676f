import { toError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Resolves true when the dependency answers. Given {@link CHECK_TIMEOUT_MS}; a rejection is false. */
export type DependencyCheck = () => Promise<boolean>;

/** How long a dependency check may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 1000;

/** A dependency an agent is waiting for. */
export interface OpenCircuit {
  readonly dependency: string;
  /** When the first record failed on it (epoch ms). */
  readonly since: number;
}

interface Open {
  readonly since: number;
  /** One record beyond the waiting ones may start while open, to see whether the dependency answers others. */
  probeStarted: boolean;
}

/** Runs `check` with a deadline; false when it rejects or runs late. */
export async function runCheck(check: DependencyCheck, timeoutMs = CHECK_TIMEOUT_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([check().then((ok) => ok === true), late]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One agent runner's dependency circuits. A record failing on a dependency opens that dependency's
 * circuit: the runner then starts no new record (its buffers fill and its partitions pause), except one
 * probe record per opening, while the failing records wait with backoff. Any record succeeding closes every
 * circuit (the handler's dependencies answered); so does a passing check of the dependency, and the last
 * waiting record leaving (it failed otherwise, was dead-lettered or revoked: new records probe again).
 */
export class Circuits {
  readonly #open = new Map<string, Open>();
  readonly #checks: ReadonlyMap<string, DependencyCheck>;
  readonly #log: Logger;
  readonly #changed: (dependency: string, up: boolean) => void;
  #successes = 0;
  /** Failures on each dependency so far: a record compares it to see whether others failed on it meanwhile. */
  readonly #failures = new Map<string, number>();
  /** Records waiting for each dependency: a circuit nobody waits for closes (no one would probe it). */
  readonly #waiting = new Map<string, number>();
  /** A check in progress, shared by every record waiting for the same dependency. */
  readonly #checking = new Map<string, Promise<boolean>>();

  constructor(checks: ReadonlyMap<string, DependencyCheck>, log: Logger, changed: (dependency: string, up: boolean) => void) {
    this.#checks = checks;
    this.#log = log;
    this.#changed = changed;
  }

  /** Records processed so far: a record compares it across its failures to see whether others got through. */
  get successes(): number {
    return this.#successes;
  }

  /** Failed attempts on `dependency` so far, over every record of the runner. */
  failures(dependency: string): number {
    return this.#failures.get(dependency) ?? 0;
  }

  get isOpen(): boolean {
    return this.#open.size > 0;
  }

  /** True, once per opening, when the runner may start one more record to probe: the caller then starts it. */
  takeProbe(): boolean {
    for (const open of this.#open.values()) {
      if (open.probeStarted) continue;
      open.probeStarted = true;
      return true;
    }
    return false;
  }

  /** A record failed on `dependency`; `open` when nothing says the dependency answers (the circuit opens). */
  failed(dependency: string, error: Error, open: boolean): void {
    this.#failures.set(dependency, this.failures(dependency) + 1);
    if (!open || this.#open.has(dependency)) return;
    this.#open.set(dependency, { since: Date.now(), probeStarted: false });
    this.#log.warn({ dependency, err: error }, `dependency ${dependency} unavailable: no new records start until it answers`);
    this.#changed(dependency, false);
  }

  /** A record waits for `dependency` (after {@link failed}); {@link leave} when it no longer does, whatever the reason. */
  enter(dependency: string): void {
    this.#waiting.set(dependency, (this.#waiting.get(dependency) ?? 0) + 1);
  }

  leave(dependency: string): void {
    const left = (this.#waiting.get(dependency) ?? 1) - 1;
    if (left > 0) {
      this.#waiting.set(dependency, left);
      return;
    }
    this.#waiting.delete(dependency);
    this.#close(dependency, 'no record waits for it any more');
  }

  /** A record was processed: whatever the handler depends on answered. */
  succeeded(): void {
    this.#successes += 1;
    if (this.#open.size > 0) for (const dependency of [...this.#open.keys()]) this.#close(dependency, 'a record was processed');
  }

  /**
   * Asks the dependency's registered check whether it answers: true or false, undefined when it has no
   * check. A pass closes its circuit.
   */
  async check(dependency: string): Promise<boolean | undefined> {
    const check = this.#checks.get(dependency);
    if (!check) return undefined;
    let running = this.#checking.get(dependency);
    if (!running) {
      running = runCheck(check)
        .catch((e: unknown) => {
          this.#log.debug({ dependency, err: toError(e) }, 'dependency check failed');
          return false;
        })
        .finally(() => this.#checking.delete(dependency));
      this.#checking.set(dependency, running);
    }
    const ok = await running;
    if (ok) this.#close(dependency, 'its check passed');
    return ok;
  }

  #close(dependency: string, why: string): void {
    const open = this.#open.get(dependency);
    if (!open) return;
    this.#open.delete(dependency);
    this.#log.info({ dependency, downMs: Date.now() - open.since }, `dependency ${dependency} answers again (${why}): resuming`);
    this.#changed(dependency, true);
  }

  snapshot(): OpenCircuit[] {
    return [...this.#open].map(([dependency, open]) => ({ dependency, since: open.since }));
  }
}
