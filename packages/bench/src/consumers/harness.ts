/**
 * The measuring side of every consumer child: RSS sampling every 50 ms, per-record end-to-end latency
 * (the record's `producedAt` to the moment its handler finished), completion, per-key order, CPU time,
 * and the result sent back to the runner over IPC.
 */
import path from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { CONFIG_ENV, type ChildMessage, type ConsumerConfig, type ConsumerResult } from '../protocol.js';
import { mb, percentileOfSorted } from '../stats.js';
import { quietTimeoutWarnings } from '../warnings.js';

/** Adds one to a diagnostics counter. */
export function count(recorder: Recorder, name: string, by = 1): void {
  recorder.diagnostics[name] = (recorder.diagnostics[name] ?? 0) + by;
}

/** Reads the config the runner passed in the environment. */
export function readConfig(): ConsumerConfig {
  const raw = process.env[CONFIG_ENV];
  if (!raw) throw new Error(`${CONFIG_ENV} is not set: consumers are started by the bench runner (pnpm bench)`);
  return JSON.parse(raw) as ConsumerConfig;
}

/** Samples RSS every 50 ms until stopped; keeps the peak. */
class RssSampler {
  peak = process.memoryUsage.rss();
  samples = 1;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#timer = setInterval(() => this.sample(), 50);
  }

  sample(): number {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
    this.samples += 1;
    return rss;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

const PROGRESS_MARKS = [0.25, 0.5, 0.75, 1] as const;
const PENDING_LIMIT_MS = 60_000;

/** How a run completes: when every record was handled, or when the consumer says so (exactly-once: at the last commit). */
export type Completion = 'all-handled' | 'explicit';

/** Counts handled records and keeps what the result needs. */
export class Recorder {
  readonly expected: number;
  readonly #started = performance.now();
  readonly #rss = new RssSampler();
  readonly #seen: Uint8Array;
  readonly #latencies: Float64Array;
  readonly #lastSeqByKey: Map<string, number> | undefined;
  readonly #completion: Completion;
  readonly #rssAtProgress: number[] = [];
  readonly #memoryAtProgress: ConsumerResult['memoryAtProgressMb'][number][] = [];
  #distinct = 0;
  /** Records with a latency (handled one by one; {@link counted} ones have none). */
  #timed = 0;
  #handled = 0;
  #orderViolations = 0;
  #firstAt: number | undefined;
  #cpuAtFirst: NodeJS.CpuUsage | undefined;
  #allHandledAt: number | undefined;
  #completedAt: number | undefined;
  /** CPU time since the first record and the kernel's RSS high-water mark, taken at completion (work after it, e.g. a check, is not measured). */
  #cpuAtEnd: NodeJS.CpuUsage | undefined;
  #maxRssAtEnd: number | undefined;
  #resolveCompleted: () => void = () => undefined;
  #rejectCompleted: (error: Error) => void = () => undefined;
  #pendingTimer: NodeJS.Timeout | undefined;
  /** Counters a consumer wants reported (see ConsumerResult.diagnostics). */
  readonly diagnostics: Record<string, number> = {};
  /** Resolves when the run is complete. */
  readonly completed: Promise<void>;

  readonly #name: string;

  constructor(config: ConsumerConfig, completion: Completion = 'all-handled') {
    this.expected = config.expected;
    this.#name = `${config.scenario}-${config.side}-${process.pid}`;
    this.#seen = new Uint8Array(config.expected);
    this.#latencies = new Float64Array(config.expected);
    this.#lastSeqByKey = config.trackOrder ? new Map() : undefined;
    this.#completion = completion;
    this.completed = new Promise((resolve, reject) => {
      this.#resolveCompleted = resolve;
      this.#rejectCompleted = reject;
    });
  }

  get distinct(): number {
    return this.#distinct;
  }

  get allHandled(): boolean {
    return this.#allHandledAt !== undefined;
  }

  /** Call when user code gets its first record: the measured interval starts there. */
  begin(): void {
    if (this.#firstAt !== undefined) return;
    this.#firstAt = performance.now();
    this.#cpuAtFirst = process.cpuUsage();
  }

  /** A record's handler finished. */
  handled(seq: number, producedAt: number, key?: string): void {
    const now = performance.timeOrigin + performance.now();
    this.#handled += 1;
    if (!(seq >= 0 && seq < this.expected) || this.#seen[seq] === 1) return;
    this.#seen[seq] = 1;
    this.#latencies[this.#timed] = now - producedAt;
    this.#timed += 1;
    this.#distinct += 1;
    if (this.#lastSeqByKey && key !== undefined) {
      const last = this.#lastSeqByKey.get(key);
      if (last !== undefined && seq <= last) this.#orderViolations += 1;
      this.#lastSeqByKey.set(key, seq);
    }
    this.#progressed();
    if (this.#distinct === this.expected) {
      this.#allHandledAt = performance.now();
      if (this.#completion === 'all-handled') {
        this.complete();
      } else {
        // Exactly-once commits every second: if it has not completed a minute after the last record, it is stuck.
        this.#pendingTimer = setTimeout(
          () =>
            this.#rejectCompleted(
              new Error(
                `all ${this.expected} records were handled, but the run did not complete (last commit) within ${PENDING_LIMIT_MS / 1000} s: see the log`,
              ),
            ),
          PENDING_LIMIT_MS,
        );
      }
    }
  }

  /**
   * `n` more records done, counted in bulk, without a latency or a `seq` each: e.g. a table's changelog
   * entries restored, which no handler sees one by one. Completion is the consumer's (`explicit`).
   */
  counted(n: number): void {
    this.#handled += n;
    this.#distinct += n;
    this.#progressed();
  }

  /** RSS (and where it is) at each progress mark passed. */
  #progressed(): void {
    while (this.#rssAtProgress.length < PROGRESS_MARKS.length && this.#distinct >= Math.ceil(this.expected * PROGRESS_MARKS[this.#rssAtProgress.length]!)) {
      this.#rssAtProgress.push(this.#rss.sample());
      const m = process.memoryUsage();
      this.#memoryAtProgress.push({ heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) });
      // Diagnostics only (it stops the process for a while): a heap snapshot half-way through.
      const snapshotDir = process.env.STREAM_BENCH_HEAP_SNAPSHOT_DIR;
      if (snapshotDir && this.#rssAtProgress.length === 2) writeHeapSnapshot(path.join(snapshotDir, `${this.#name}.heapsnapshot`));
    }
  }

  /** Ends the measured interval (called by itself for `all-handled`). */
  complete(): void {
    if (this.#completedAt !== undefined) return;
    this.#completedAt = performance.now();
    clearTimeout(this.#pendingTimer);
    this.#cpuAtEnd = process.cpuUsage(this.#cpuAtFirst);
    this.#maxRssAtEnd = process.resourceUsage().maxRSS;
    this.#rss.sample();
    this.#rss.stop();
    this.#resolveCompleted();
  }

  /** The measurements, once complete. */
  result(): Omit<ConsumerResult, 'stopMs'> {
    const completedAt = this.#completedAt ?? performance.now();
    const firstAt = this.#firstAt ?? completedAt;
    const cpu = this.#cpuAtEnd ?? process.cpuUsage(this.#cpuAtFirst);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const sorted = this.#latencies.subarray(0, this.#timed).sort();
    const durationMs = completedAt - firstAt;
    return {
      handled: this.#handled,
      distinct: this.#distinct,
      duplicates: this.#handled - this.#distinct,
      setupMs: firstAt - this.#started,
      durationMs,
      recordsPerSec: durationMs > 0 ? (this.#distinct / durationMs) * 1000 : Number.NaN,
      p50Ms: percentileOfSorted(sorted, 50),
      p99Ms: percentileOfSorted(sorted, 99),
      maxLatencyMs: sorted[sorted.length - 1] ?? Number.NaN,
      peakRssMb: mb(this.#rss.peak),
      maxRssMb: (this.#maxRssAtEnd ?? process.resourceUsage().maxRSS) / 1024,
      rssAtProgressMb: this.#rssAtProgress.map(mb),
      memoryAtProgressMb: this.#memoryAtProgress,
      rssSamples: this.#rss.samples,
      orderViolations: this.#lastSeqByKey ? this.#orderViolations : null,
      cpuMs,
      cpuMsPer1kRecords: this.#distinct > 0 ? (cpuMs / this.#distinct) * 1000 : Number.NaN,
      diagnostics: { ...this.diagnostics },
    };
  }
}

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      process.stdout.write(`${JSON.stringify(message)}\n`);
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

async function bounded(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** What a consumer's `start` returns: how to stop it gracefully once the run is complete. */
export type Stop = () => Promise<void>;

/**
 * What `start` returns instead when the consumer checks its own work once the measured interval is over:
 * `verify` runs after completion (untimed: CPU and RSS were taken at completion), before the result is
 * taken, and reports what it found in `recorder.diagnostics`. It must bound its own waits.
 */
export interface Started {
  readonly stop: Stop;
  readonly verify: () => Promise<void>;
}

/**
 * Runs a consumer child: `start` connects and begins consuming, calling `recorder.handled` per record;
 * the run ends when the recorder is complete (or at the deadline, which is an error). Then the consumer
 * is stopped and the result goes to the runner.
 */
export async function runConsumer(
  start: (config: ConsumerConfig, recorder: Recorder) => Promise<Stop | Started>,
  completion: (config: ConsumerConfig) => Completion = () => 'all-handled',
): Promise<void> {
  quietTimeoutWarnings();
  let stop: Stop | undefined;
  let exitCode = 0;
  try {
    const config = readConfig();
    const recorder = new Recorder(config, completion(config));
    const started = await start(config, recorder);
    stop = typeof started === 'function' ? started : started.stop;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${config.scenario}/${config.side}: not complete after ${Math.round(config.deadlineMs / 1000)} s: ${recorder.distinct} of ${config.expected} records handled${recorder.allHandled ? ' (all handled, completion pending)' : ''}`,
            ),
          ),
        config.deadlineMs,
      );
    });
    await Promise.race([recorder.completed, deadline]);
    clearTimeout(timer);
    if (typeof started !== 'function') await started.verify();
    const measured = recorder.result();
    const stopping = performance.now();
    await bounded(stop(), 20_000);
    stop = undefined;
    await send({ type: 'result', result: { ...measured, stopMs: performance.now() - stopping } });
  } catch (error) {
    exitCode = 1;
    await send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    if (stop)
      await bounded(
        stop().catch(() => undefined),
        10_000,
      );
  }
  process.exit(exitCode);
}
