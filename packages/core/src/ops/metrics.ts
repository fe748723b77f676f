import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { App } from '../app.js';
import type { PartitionHealth } from '../health.js';
import type { AgentLabels, Instrumentation } from '../runtime/instrumentation.js';

/**
 * Prometheus metrics of an app's runtime. The application owns the registry (pass your own to add
 * service metrics beside these); default Node.js process metrics are registered once per registry.
 *
 * @example
 * const metrics = new RuntimeMetrics();
 * const app = createApp({ id, brokers, instrumentation: metrics });
 * metrics.attach(app); // lag and commit age read from the running app
 */
export class RuntimeMetrics implements Instrumentation {
  readonly registry: Registry;
  readonly #processed: Counter<'agent' | 'topic'>;
  readonly #failed: Counter<'agent' | 'topic' | 'error'>;
  readonly #retried: Counter<'agent' | 'topic'>;
  readonly #deadLettered: Counter<'agent' | 'topic'>;
  readonly #inFlight: Gauge<'agent' | 'topic'>;
  readonly #duration: Histogram<'agent' | 'topic'>;
  readonly #committed: Gauge<'topic' | 'partition'>;
  readonly #revoked: Counter<'topic' | 'partition'>;
  readonly #dependencyUp: Gauge<'agent' | 'topic' | 'dependency'>;
  readonly #restoreLag: Gauge<'table' | 'partition'>;
  readonly #restored: Gauge<'table' | 'partition'>;
  #app: App | undefined;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.#processed = new Counter({
      name: 'stream_records_processed_total',
      help: 'Records a handler processed successfully',
      labelNames: ['agent', 'topic'],
      registers,
    });
    this.#failed = new Counter({
      name: 'stream_records_failed_total',
      help: 'Handler attempts that failed',
      labelNames: ['agent', 'topic', 'error'],
      registers,
    });
    this.#retried = new Counter({
      name: 'stream_records_retried_total',
      help: 'Retries scheduled after a failed attempt',
      labelNames: ['agent', 'topic'],
      registers,
    });
    this.#deadLettered = new Counter({
      name: 'stream_records_dead_lettered_total',
      help: 'Records sent to a dead-letter topic',
      labelNames: ['agent', 'topic'],
      registers,
    });
    this.#inFlight = new Gauge({
      name: 'stream_records_in_flight',
      help: 'Records being processed (retry waits included)',
      labelNames: ['agent', 'topic'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'stream_handler_duration_seconds',
      help: 'Duration of successful handler attempts',
      labelNames: ['agent', 'topic'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#committed = new Gauge({ name: 'stream_committed_offset', help: 'Last committed offset', labelNames: ['topic', 'partition'], registers });
    this.#revoked = new Counter({
      name: 'stream_partitions_revoked_total',
      help: 'Partitions taken away by rebalances',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.#dependencyUp = new Gauge({
      name: 'stream_dependency_up',
      help: 'Whether an agent sees a dependency answering (0 while it waits for it and starts no new records)',
      labelNames: ['agent', 'topic', 'dependency'],
      registers,
    });
    this.#restoreLag = new Gauge({
      name: 'stream_table_restore_lag',
      help: 'Changelog entries left to read before a table partition is restored (0 once restored)',
      labelNames: ['table', 'partition'],
      registers,
    });
    this.#restored = new Gauge({
      name: 'stream_table_restored_entries',
      help: 'Changelog entries read by the last restore of a table partition',
      labelNames: ['table', 'partition'],
      registers,
    });
    const app = () => this.#app;
    new Gauge({
      name: 'stream_consumer_lag',
      help: 'Records between the log end and the committed offset, per assigned partition',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const l of app()?.health().lag ?? []) this.set({ topic: l.topic, partition: String(l.partition) }, l.lag);
      },
    });
    new Gauge({
      name: 'stream_last_commit_age_seconds',
      help: 'Largest stream_partition_commit_age_seconds over the assigned partitions (0 when all are up to date)',
      registers,
      collect() {
        const age = app()?.health().commitAgeMs;
        if (age !== undefined) this.set(age / 1000);
      },
    });
    const perPartition = (name: string, help: string, read: (p: PartitionHealth) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['topic', 'partition'],
        registers,
        collect() {
          this.reset();
          for (const p of app()?.health().partitions ?? []) this.set({ topic: p.topic, partition: String(p.partition) }, read(p));
        },
      });
    perPartition(
      'stream_partition_commit_age_seconds',
      'Seconds since the partition last committed, while it has uncommitted records (0 when up to date)',
      (p) => p.commitAgeMs / 1000,
    );
    perPartition(
      'stream_partition_oldest_unfinished_seconds',
      'Age of the oldest record a handler started on the partition and has not finished (0 when none)',
      (p) => (p.oldestUnfinished?.ageMs ?? 0) / 1000,
    );
    perPartition(
      'stream_partition_held_records',
      'Records the partition holds (queued, running, finished behind an unfinished one, exactly-once outputs)',
      (p) => p.heldRecords,
    );
    perPartition('stream_partition_held_bytes', 'Bytes of stream_partition_held_records, counted against buffer.maxBytes', (p) => p.heldBytes);
    perPartition('stream_partition_paused', '1 while fetching of the partition is paused (full, claiming or stopping)', (p) =>
      p.paused || p.claiming ? 1 : 0,
    );
    new Counter({
      name: 'stream_timer_runs_total',
      help: 'Runs of each timer and crontab by outcome: succeeded, failed, or skipped because the previous run had not finished',
      labelNames: ['timer', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const t of app()?.health().timers ?? []) {
          this.inc({ timer: t.name, outcome: 'succeeded' }, t.succeeded);
          this.inc({ timer: t.name, outcome: 'failed' }, t.failed);
          this.inc({ timer: t.name, outcome: 'skipped' }, t.skipped);
        }
      },
    });
    new Gauge({
      name: 'stream_global_table_lag',
      help: "Records of a global table's topic committed (as of its last poll) and not applied yet, over its partitions",
      labelNames: ['table'],
      registers,
      collect() {
        this.reset();
        for (const t of app()?.health().globalTables ?? []) this.set({ table: t.name }, t.lag);
      },
    });
    new Gauge({
      name: 'stream_global_table_loaded',
      help: '1 once a global table was read up to the end offsets read at start',
      labelNames: ['table'],
      registers,
      collect() {
        this.reset();
        for (const t of app()?.health().globalTables ?? []) this.set({ table: t.name }, t.loaded ? 1 : 0);
      },
    });
    new Counter({
      name: 'stream_global_table_skipped_total',
      help: "Records of a global table's topic skipped because their key or value failed the codec or schema (the last one's offset: health().globalTables[].lastSkipped and the error log)",
      labelNames: ['table'],
      registers,
      collect() {
        this.reset();
        for (const t of app()?.health().globalTables ?? []) this.inc({ table: t.name }, t.skipped);
      },
    });
    new Gauge({
      name: 'stream_timer_active',
      help: '1 while this instance runs the timer (for an onLeader timer: while it leads its group)',
      labelNames: ['timer'],
      registers,
      collect() {
        this.reset();
        for (const t of app()?.health().timers ?? []) this.set({ timer: t.name }, t.active ? 1 : 0);
      },
    });
  }

  /** Lets lag and commit-age gauges read the running app. */
  attach(app: App): void {
    this.#app = app;
  }

  processed(labels: AgentLabels, durationSeconds: number): void {
    this.#processed.inc({ ...labels });
    this.#duration.observe({ ...labels }, durationSeconds);
  }

  failed(labels: AgentLabels, error: Error): void {
    this.#failed.inc({ ...labels, error: error.name });
  }

  retried(labels: AgentLabels): void {
    this.#retried.inc({ ...labels });
  }

  deadLettered(labels: AgentLabels): void {
    this.#deadLettered.inc({ ...labels });
  }

  inFlight(labels: AgentLabels, delta: number): void {
    this.#inFlight.inc({ ...labels }, delta);
  }

  committed(topic: string, partition: number, offset: number): void {
    this.#committed.set({ topic, partition: String(partition) }, offset);
  }

  fetched(): void {
    // Lag is computed on scrape from the runtime; nothing to do per fetch.
  }

  revoked(topic: string, partition: number): void {
    this.#revoked.inc({ topic, partition: String(partition) });
  }

  dependency(labels: AgentLabels, dependency: string, up: boolean): void {
    this.#dependencyUp.set({ ...labels, dependency }, up ? 1 : 0);
  }

  restoring(table: string, partition: number, lag: number, restored: number): void {
    const labels = { table, partition: String(partition) };
    this.#restoreLag.set(labels, lag);
    this.#restored.set(labels, restored);
  }
}
