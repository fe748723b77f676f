import { Cron } from 'croner';
import { StreamError, toError } from './errors.js';
import type { Logger } from './logger.js';
import type { Assignment, Transport, TransportConsumer } from './transport/transport.js';

/** What a timer's function gets on each run. */
export interface TimerContext {
  /** The timer's name (see {@link TimerOptions.name}). */
  readonly name: string;
  /** When this run was due (it starts a few milliseconds later). */
  readonly scheduledAt: Date;
  /**
   * Aborts when the app stops (after its shutdown deadline) or, for an `onLeader` timer, when this
   * instance stops being the one of its group that runs it (a rebalance moved the lead elsewhere).
   */
  readonly signal: AbortSignal;
  /** The app's logger with the timer's name. */
  readonly log: Logger;
}

export type TimerFunction = (ctx: TimerContext) => void | Promise<void>;

export interface TimerOptions {
  /** Names the timer in logs, health and metrics; unique in the app. Default the function's name, else `timer-<n>`. */
  readonly name?: string;
  /**
   * Run on one instance of the app's group only: the one that owns the single partition of the app's
   * `<appId>-leader` topic in the `<appId>-leader` consumer group (created at start). When that instance
   * stops or a rebalance moves the partition, another takes over. Default false: every instance runs it.
   * As with any lease, an instance cut off from the broker keeps the lead until its session times out.
   */
  readonly onLeader?: boolean;
}

export interface CrontabOptions extends TimerOptions {
  /** IANA time zone the expression is read in, e.g. `Europe/Berlin`; default UTC. */
  readonly timezone?: string;
}

/** One timer in `app.health().timers`. */
export interface TimerHealth {
  readonly name: string;
  /** `every 1000 ms` or the cron expression and its time zone. */
  readonly schedule: string;
  readonly onLeader: boolean;
  /** This instance runs it now: always for an ordinary timer once the app runs, for `onLeader` while it leads. */
  readonly active: boolean;
  /** A run is in progress. */
  readonly running: boolean;
  /** Runs that returned without error. */
  readonly succeeded: number;
  readonly failed: number;
  /** Runs not started because the previous run had not finished. */
  readonly skipped: number;
  readonly lastRunAt: Date | undefined;
  /** The message of the last failed run's error, until a run succeeds. */
  readonly lastError: string | undefined;
  readonly nextRunAt: Date | undefined;
}

/** When a schedule is next due after `after`; null when never again. */
export interface Schedule {
  readonly description: string;
  next(after: Date): Date | null;
}

/**
 * Every `intervalMs`, counted from `anchor` (default: the first time it is asked, i.e. when the app starts),
 * so runs do not drift by the time each takes.
 */
export function intervalSchedule(intervalMs: number, anchor?: number): Schedule {
  if (!Number.isFinite(intervalMs) || intervalMs < 1) {
    throw new StreamError('CONFIG_INVALID', `timer interval must be a whole number of milliseconds ≥ 1, got ${intervalMs}`);
  }
  return {
    description: `every ${intervalMs} ms`,
    next(after) {
      const from = (anchor ??= after.getTime());
      const elapsed = after.getTime() - from;
      return new Date(from + (Math.floor(elapsed / intervalMs) + 1) * intervalMs);
    },
  };
}

/**
 * A cron expression (5 fields, or 6 with seconds first, as croner reads them) in `timezone` (default UTC).
 * An invalid expression or time zone throws `CONFIG_INVALID` here, not at the first run.
 */
export function cronSchedule(expression: string, timezone = 'UTC'): Schedule {
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone, paused: true });
    cron.nextRun();
  } catch (error) {
    throw new StreamError('CONFIG_INVALID', `crontab ${JSON.stringify(expression)} in ${timezone}: ${toError(error).message}`, { cause: error });
  }
  return { description: `cron ${expression} (${timezone})`, next: (after) => cron.nextRun(after) };
}

/** After the stop deadline aborted the runs in progress, how long they get to wind down. */
const ABORT_GRACE_MS = 2000;

/** The longest a single setTimeout may wait; a later due time is reached in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

class Timer {
  readonly name: string;
  readonly onLeader: boolean;
  readonly #schedule: Schedule;
  readonly #fn: TimerFunction;
  readonly #log: Logger;
  #handle: NodeJS.Timeout | undefined;
  #nextRunAt: Date | undefined;
  #run: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #succeeded = 0;
  #failed = 0;
  #skipped = 0;
  #lastRunAt: Date | undefined;
  #lastError: string | undefined;

  constructor(name: string, schedule: Schedule, fn: TimerFunction, onLeader: boolean, log: Logger) {
    this.name = name;
    this.onLeader = onLeader;
    this.#schedule = schedule;
    this.#fn = fn;
    this.#log = log;
  }

  /** Schedules the next run after now; `active` decides at each due time whether it runs. */
  schedule(active: () => boolean): void {
    const due = this.#schedule.next(new Date());
    this.#nextRunAt = due ?? undefined;
    if (!due) return;
    const wait = (): void => {
      const left = due.getTime() - Date.now();
      if (left > 0) {
        this.#handle = setTimeout(wait, Math.min(left, MAX_TIMEOUT_MS));
        return;
      }
      if (active()) this.#start(due);
      this.schedule(active);
    };
    wait();
  }

  #start(scheduledAt: Date): void {
    if (this.#run) {
      this.#skipped += 1;
      this.#log.warn({ timer: this.name, scheduledAt }, 'timer run skipped: the previous run has not finished');
      return;
    }
    const abort = new AbortController();
    this.#abort = abort;
    this.#lastRunAt = new Date();
    const ctx: TimerContext = { name: this.name, scheduledAt, signal: abort.signal, log: this.#log };
    const run = (async () => {
      try {
        await this.#fn(ctx);
        this.#succeeded += 1;
        this.#lastError = undefined;
      } catch (error) {
        this.#failed += 1;
        this.#lastError = toError(error).message;
        this.#log.error({ err: toError(error), timer: this.name, scheduledAt }, 'timer run failed');
      }
    })();
    // Cleared after it settles, also when `fn` threw before its first await (then `run` is already settled here).
    this.#run = run.finally(() => {
      this.#run = undefined;
      this.#abort = undefined;
    });
  }

  /** Aborts the run in progress, if any. */
  abort(reason: Error): void {
    this.#abort?.abort(reason);
  }

  /** Stops scheduling; resolves when the run in progress (if any) ended. */
  halt(): Promise<void> {
    clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#nextRunAt = undefined;
    return this.#run ?? Promise.resolve();
  }

  health(active: boolean): TimerHealth {
    return {
      name: this.name,
      schedule: this.#schedule.description,
      onLeader: this.onLeader,
      active,
      running: this.#run !== undefined,
      succeeded: this.#succeeded,
      failed: this.#failed,
      skipped: this.#skipped,
      lastRunAt: this.#lastRunAt,
      lastError: this.#lastError,
      nextRunAt: this.#nextRunAt,
    };
  }
}

/** The leader topic and group of an app with `onLeader` timers. */
export function leaderTopicName(appId: string): string {
  return `${appId}-leader`;
}

/** How the app's timers reach the broker when some run on the leader only. */
export interface TimerStartOptions {
  readonly appId: string;
  readonly transport: Transport;
  readonly sessionTimeoutMs?: number | undefined;
  readonly heartbeatIntervalMs?: number | undefined;
}

/**
 * An app's timers and crontabs. Each run starts at its due time unless the previous one still runs (then it
 * is skipped and counted): a slow run never piles up. A failing run is logged and counted and the timer keeps
 * its schedule. `onLeader` timers run only while this instance owns the app's leader partition.
 */
export class Timers {
  readonly #timers: Timer[] = [];
  readonly #log: Logger;
  #running = false;
  #leader = false;
  #consumer: TransportConsumer | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  get size(): number {
    return this.#timers.length;
  }

  add(name: string | undefined, schedule: Schedule, fn: TimerFunction, onLeader: boolean): void {
    const resolved = name ?? (fn.name || `timer-${this.#timers.length + 1}`);
    if (this.#timers.some((t) => t.name === resolved)) {
      throw new StreamError('CONFIG_INVALID', `timer ${JSON.stringify(resolved)} is defined twice: give each timer its own name`);
    }
    this.#timers.push(new Timer(resolved, schedule, fn, onLeader, this.#log.child({ timer: resolved })));
  }

  /** True while this instance owns the leader partition. */
  get leader(): boolean {
    return this.#leader;
  }

  /** Joins the leader group when an `onLeader` timer needs it (before the app's agents start). */
  async join(options: TimerStartOptions): Promise<void> {
    if (this.#timers.some((t) => t.onLeader)) await this.#joinLeaderGroup(options);
  }

  /** Schedules every timer (once the app runs). */
  schedule(): void {
    this.#running = true;
    for (const timer of this.#timers) timer.schedule(() => this.#running && (!timer.onLeader || this.#leader));
  }

  async #joinLeaderGroup({ appId, transport, sessionTimeoutMs, heartbeatIntervalMs }: TimerStartOptions): Promise<void> {
    const topic = leaderTopicName(appId);
    const admin = transport.admin();
    await admin.connect();
    try {
      // Nothing is ever written to it: it only carries the lead, as its one partition's owner.
      if (!(await admin.listTopics()).includes(topic)) await admin.createTopics([{ name: topic, partitions: 1 }]);
    } finally {
      await admin.disconnect();
    }
    const consumer = transport.consumer({
      groupId: topic,
      topics: [topic],
      fromBeginning: false,
      sessionTimeoutMs: sessionTimeoutMs ?? 30_000,
      heartbeatIntervalMs: heartbeatIntervalMs ?? 3_000,
      rebalanceTimeoutMs: 60_000,
      readCommitted: true,
      maxBytesPerPartition: 1024,
    });
    this.#consumer = consumer;
    await consumer.start({
      onAssignment: (assignment: Assignment) => this.#setLeader(assignment.partitions.some((p) => p.topic === topic && p.partition === 0)),
      onBatch: (batch) => batch.messages.length,
      onRevoking: () => this.#setLeader(false),
      onCrash: (error) => {
        this.#log.error({ err: error }, 'leader group consumer stopped: onLeader timers stop here');
        this.#setLeader(false);
      },
    });
  }

  #setLeader(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#log.info({ leader }, leader ? 'this instance now runs the onLeader timers' : 'this instance no longer runs the onLeader timers');
    if (!leader) {
      const reason = new StreamError('ABORTED', 'this instance is no longer the leader');
      for (const timer of this.#timers) if (timer.onLeader) timer.abort(reason);
    }
  }

  /**
   * Stops scheduling, lets runs in progress finish for `timeoutMs`, then aborts them, and leaves the
   * leader group so that another instance takes over at once.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#running = false;
    const runs = Promise.all(this.#timers.map((t) => t.halt()));
    let handle: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => (handle = setTimeout(() => resolve('deadline'), timeoutMs)));
    if ((await Promise.race([runs, deadline])) === 'deadline') {
      const reason = new StreamError('SHUTDOWN_TIMEOUT', `timer runs did not finish within ${timeoutMs} ms`);
      for (const timer of this.#timers) timer.abort(reason);
      // A function that ignores its signal cannot keep a stopping process alive.
      await Promise.race([runs, new Promise((resolve) => setTimeout(resolve, ABORT_GRACE_MS))]);
    }
    clearTimeout(handle);
    const consumer = this.#consumer;
    this.#consumer = undefined;
    this.#leader = false;
    if (consumer) await consumer.stop().catch((e: unknown) => this.#log.warn({ err: toError(e) }, 'leaving the leader group failed'));
  }

  health(): TimerHealth[] {
    return this.#timers.map((t) => t.health(this.#running && (!t.onLeader || this.#leader)));
  }
}
