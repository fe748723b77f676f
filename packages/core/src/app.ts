import type { AgentHandler, AgentOptions, BatchAgentOptions } from './agent.js';
import { batchRecordHandler, validateBatchOptions, type BatchHandler } from './batch.js';
import { StreamError, toError } from './errors.js';
import { DEFAULT_STUCK_AFTER_MS, NO_CONSUMER, stuckRecords, type AppHealth, type AppState } from './health.js';
import { createLogger, type Logger } from './logger.js';
import { runUntilSignalled } from './process.js';
import { SharedProducer } from './producer.js';
import type { OutgoingRecord } from './record.js';
import { AppRuntime, type TableLocation } from './runtime/app-runtime.js';
import { checkAdvertisedUrl, memberInfoOf } from './ops/advertise.js';
import type { DependencyCheck } from './runtime/circuit.js';
import { noInstrumentation, type Instrumentation } from './runtime/instrumentation.js';
import { retryStages } from './runtime/retry-topics.js';
import type { StreamAgentFunction } from './stream.js';
import { cronSchedule, intervalSchedule, Timers, type CrontabOptions, type TimerFunction, type TimerOptions } from './timers.js';
import { LocalStore } from './table-store.js';
import { Table, type AnyTable, type TableOf, type TableOptions } from './table.js';
import { GlobalTable, type AnyGlobalTable, type GlobalTableOptions } from './global-table.js';
import { followGlobalTable, type GlobalTableFollower } from './runtime/follow.js';
import { WindowedTable, type WindowedTableOf, type WindowedTableOptions } from './windowed-table.js';
import type { Schema } from './schema.js';
import { ensureChangelogs, type TablesByTopic } from './runtime/restore.js';
import type { AnyTopic, KeyOf, RecordSender, Topic, ValueOf } from './topic.js';
import { checkAgentName, planTopology, type AgentEntry } from './topology.js';
import { ensureTopics } from './topology/ensure-topics.js';
import { selectTransport, type KafkaClient, type KafkaConnectionOptions } from './transport/select.js';
import type { OutgoingMessage, Transport } from './transport/transport.js';

export type { AppState } from './health.js';

/** Options of {@link createApp}. */
export interface AppOptions {
  /** The app's id: consumer group id and transactional id prefix. */
  readonly id: string;
  /** Kafka bootstrap brokers (ignored when `transport` is a Transport). */
  readonly brokers?: readonly string[];
  /** Client id sent to the brokers; default the app id. */
  readonly clientId?: string;
  /** TLS, SASL and timeouts for the Kafka transport (kafkajs or platformatic). */
  readonly kafka?: KafkaConnectionOptions;
  /**
   * The Kafka client to connect with: `'kafkajs'` (default) or `'platformatic'` (@platformatic/kafka); or
   * another transport, e.g. `new MemoryTransport()` in tests.
   */
  readonly transport?: Transport | KafkaClient;
  /** Consumer group id; default the app id. */
  readonly groupId?: string;
  readonly logger?: Logger;
  readonly instrumentation?: Instrumentation;
  /** Create missing source and output topics from their definitions (default false: a missing topic stops the start). */
  readonly createTopics?: boolean;
  /** Topics the app sends to: checked (or created, with `createTopics`) at start, so a typo fails fast. */
  readonly outputs?: readonly AnyTopic[];
  /** Where a group without committed offsets starts: `'earliest'` (default) or `'latest'`. */
  readonly startFrom?: 'earliest' | 'latest';
  /**
   * How often completed offsets are committed (with exactly-once agents: how often their transactions commit,
   * which is when their outputs become visible). Default 1000 ms, or 100 ms when an agent is exactly-once.
   */
  readonly commitIntervalMs?: number;
  /** How long `stop()` lets in-flight records finish before aborting them. Default 30 s. */
  readonly shutdownTimeoutMs?: number;
  /**
   * Records and bytes a partition may hold before it is paused (queued, running, finished behind an unfinished
   * record, exactly-once outputs awaiting their transaction; keys, values and headers counted). It resumes
   * below half of both. Default 16 MiB, and as many records as the most demanding agent needs at full speed:
   * its `concurrency`, a stream's `prefetch`, or two batches of a batch agent; at least 256.
   */
  readonly buffer?: { readonly maxRecords?: number; readonly maxBytes?: number };
  readonly sessionTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly rebalanceTimeoutMs?: number;
  /**
   * Largest fetch per partition. Default 128 KiB: what a partition fetched stays in memory until processed,
   * so larger fetches cost memory and garbage collection, not speed (see the core README's Backpressure).
   */
  readonly maxBytesPerPartition?: number;
  /**
   * What a consumed record's headers may hold before it is refused: a record over either limit goes to
   * the dead-letter topic (a `DecodeError` naming the limit) without reaching the handler. Default 1,000
   * headers and 64 KiB of header names and values.
   */
  readonly headerLimits?: HeaderLimits;
  /**
   * A record whose handler has not finished this long after it started (retries and their backoff included)
   * is stuck: `health().stuck` names its agent and partition and `/healthz` fails. Default 5 minutes; keep
   * it above the longest retry policy (attempts times `backoff.maxMs`).
   */
  readonly stuckAfterMs?: number;
  /**
   * The address other instances of the group redirect table queries to (`GET /tables/<table>/<key>`): this
   * instance's ops server as they reach it, e.g. `http://orders-2.orders:9464` (http or https, no
   * credentials, query or fragment; a path is kept as a prefix). It is published in the consumer group
   * (the member's subscription userData). Default: what {@link startOpsServer} listens on, when it is
   * started before the app (`http://<host>:<port>`, the host name for a wildcard bind).
   */
  readonly advertisedUrl?: string;
  /**
   * Keeps tables' partitions on local disk as well, in LMDB under this directory (one environment per
   * changelog, written by this instance alone), with a checkpoint of the changelog offset they hold: a restart
   * or a partition coming back restores only the changelog written since. Reads still come from memory.
   * Default: none, tables live in memory only and every assignment restores its whole changelog partition
   * (what a read-only container needs). A store that cannot be proven consistent with the changelog is
   * discarded and restored in full; see the README's "Persistent local store".
   *
   * @example
   * createApp({ id: 'click-counter', brokers: ['127.0.0.1:9092'], stateDir: '/var/lib/click-counter' });
   */
  readonly stateDir?: string;
}

/** See {@link AppOptions.headerLimits}. */
export interface HeaderLimits {
  readonly maxHeaders?: number;
  readonly maxBytes?: number;
}

/** How `stop()` ended. */
export interface StopResult {
  /** True when in-flight records had to be aborted at the deadline. */
  readonly timedOut: boolean;
}

/**
 * A stream-processing app: agents consuming typed topics, one consumer group, one producer.
 * Create with {@link createApp}.
 */
export class App implements RecordSender {
  readonly id: string;
  readonly log: Logger;
  readonly transport: Transport;
  readonly #options: AppOptions;
  readonly #agents: AgentEntry[] = [];
  readonly #instrumentation: Instrumentation;
  readonly #stopping = new AbortController();
  #state: AppState = 'created';
  readonly #producer: SharedProducer;
  #runtime: AppRuntime | undefined;
  #stopped: Promise<StopResult> | undefined;
  #failure: Error | undefined;
  readonly #stopHooks: (() => Promise<void>)[] = [];
  readonly #checks = new Map<string, DependencyCheck>();
  readonly #timers: Timers;
  readonly #tables = new Map<string, AnyTable>();
  /** The tables of each consumed topic, once started. */
  #tablesByTopic: TablesByTopic = new Map();
  #advertisedUrl: string | undefined;
  readonly #globalTables = new Map<string, AnyGlobalTable>();
  /** Ends the global tables' follow loops: on stop, or when the start fails after they began. */
  readonly #following = new AbortController();
  #followers: GlobalTableFollower[] = [];

  constructor(options: AppOptions) {
    if (!/^[A-Za-z0-9._-]+$/.test(options.id)) throw new StreamError('CONFIG_INVALID', `invalid app id ${JSON.stringify(options.id)}`);
    this.id = options.id;
    this.#options = options;
    if (options.stuckAfterMs !== undefined && !(options.stuckAfterMs > 0)) {
      throw new StreamError('CONFIG_INVALID', `app ${options.id}: stuckAfterMs must be a positive number of milliseconds, got ${options.stuckAfterMs}`);
    }
    this.#advertisedUrl = options.advertisedUrl === undefined ? undefined : checkAdvertisedUrl(options.advertisedUrl, `app ${options.id}`);
    this.log = options.logger ?? createLogger({ name: options.id });
    this.#instrumentation = options.instrumentation ?? noInstrumentation;
    this.transport = selectTransport(options, this.log);
    this.#producer = new SharedProducer(this.transport);
    this.#timers = new Timers(this.log.child({ component: 'timers' }));
  }

  get state(): AppState {
    return this.#state;
  }

  /** The directory tables are kept in on local disk (see {@link AppOptions.stateDir}), if any. */
  get stateDir(): string | undefined {
    return this.#options.stateDir;
  }

  /** The address this instance advertises to its group for table queries (see {@link AppOptions.advertisedUrl}), if any. */
  get advertisedUrl(): string | undefined {
    return this.#advertisedUrl;
  }

  /**
   * @internal the ops server's own address, advertised unless `advertisedUrl` was given. Only before
   * `start()`: the address is published when the consumer joins its group. Returns whether it is advertised.
   */
  adoptAdvertisedUrl(url: string): boolean {
    const checked = checkAdvertisedUrl(url, `app ${this.id}`);
    if (this.#state === 'created') this.#advertisedUrl ??= checked;
    return this.#advertisedUrl === checked;
  }

  /**
   * @internal a table that queries can reach: defined with {@link table}, used by a running agent, with its
   * source topics (co-partitioned) and their partition count. Undefined otherwise.
   */
  queryableTable(name: string): { readonly table: AnyTable; readonly topics: readonly string[]; readonly partitions: number } | undefined {
    const table = this.#tables.get(name);
    if (!table) return undefined;
    const topics: string[] = [];
    let partitions = 0;
    for (const [topic, usages] of this.#tablesByTopic) {
      const usage = usages.find((u) => u.table === table);
      if (!usage) continue;
      topics.push(topic);
      partitions = usage.partitions;
    }
    return topics.length === 0 ? undefined : { table, topics: topics.sort(), partitions };
  }

  /** @internal where partition `partition` of a {@link queryableTable} lives: here, or the member owning it. */
  locateTablePartition(table: AnyTable, topics: readonly string[], partition: number): Promise<TableLocation> {
    const runtime = this.#runtime;
    if (!runtime || this.#state !== 'running') return Promise.resolve({ kind: 'none', reason: `app is ${this.#state}` });
    return runtime.locate(table, topics, partition);
  }

  /** Why the app failed, when `state` is `'failed'`. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Adds an agent: `handler` runs for every record of `topic`.
   *
   * @example
   * app.agent(orders, { concurrency: 32, retry: { attempts: 5 } }, async (order, ctx) => {
   *   await emailer.sendConfirmation(order, { signal: ctx.signal });
   * });
   */
  agent<T extends AnyTopic>(topic: T, handler: AgentHandler<KeyOf<T>, ValueOf<T>>): this;
  /**
   * Adds a batch agent: `handler` gets up to `batch.maxRecords` records of one partition at a time, in
   * offset order, the partitions side by side. It may fail single records (see {@link BatchOutcomes}):
   * only those are retried and dead-lettered, and the commit never passes them.
   *
   * @example
   * app.agent(activities, { batch: { maxRecords: 500, maxWaitMs: 20 } }, async (records) => {
   *   await store.writeAll(records.map((r) => r.value));
   * });
   */
  agent<T extends AnyTopic>(topic: T, options: BatchAgentOptions, handler: BatchHandler<KeyOf<T>, ValueOf<T>>): this;
  agent<T extends AnyTopic>(topic: T, options: AgentOptions, handler: AgentHandler<KeyOf<T>, ValueOf<T>>): this;
  agent<T extends AnyTopic>(
    topic: T,
    optionsOrHandler: AgentOptions | BatchAgentOptions | AgentHandler<KeyOf<T>, ValueOf<T>>,
    maybeHandler?: AgentHandler<KeyOf<T>, ValueOf<T>> | BatchHandler<KeyOf<T>, ValueOf<T>>,
  ): this {
    const [given, handler] = typeof optionsOrHandler === 'function' ? [{}, optionsOrHandler] : [optionsOrHandler, maybeHandler];
    if (!handler) throw new StreamError('CONFIG_INVALID', `agent on ${topic.name}: a handler is required`);
    let options: AgentOptions = given;
    let recordHandler = handler as AgentHandler<unknown, unknown>;
    if ('batch' in given && given.batch !== undefined) {
      const { batch, ...rest } = given;
      if ((rest.tables ?? []).length > 0) throw new StreamError('CONFIG_INVALID', `agent on ${topic.name}: tables are for record agents, not batch agents`);
      if ('ordering' in rest) throw new StreamError('CONFIG_INVALID', `agent on ${topic.name}: a batch agent keeps offset order per partition; drop ordering`);
      validateBatchOptions(rest.name ?? topic.name, batch);
      // Records start at once and wait in their partition's batch: the partition's buffer limits bound them.
      options = { ...rest, ordering: 'none', concurrency: rest.concurrency ?? Number.POSITIVE_INFINITY };
      recordHandler = batchRecordHandler(handler as BatchHandler<unknown, unknown>, batch);
    }
    this.#addAgent({
      topic,
      options,
      handler: recordHandler,
      retryStages: retryStages(topic.name, options.retryTopics?.delaysMs ?? []),
      ...('batch' in given && given.batch !== undefined ? { batchRecords: given.batch.maxRecords } : {}),
    });
    return this;
  }

  /**
   * Adds a Faust-style stream agent: `fn` iterates the topic's values (sequentially), with `take`,
   * `filter`, `map` and `through`. A value is done once the loop asks for the next one; if `fn` throws,
   * the values it had not finished are retried (then dead-lettered) and `fn` is started again.
   *
   * @example
   * app.stream(activities, {}, async (stream) => {
   *   for await (const batch of stream.take(100, { within: 1000 })) await cache.write(batch);
   * });
   */
  stream<T extends AnyTopic>(topic: T, options: AgentOptions & { readonly prefetch?: number }, fn: StreamAgentFunction<KeyOf<T>, ValueOf<T>>): this {
    if (options.retryTopics) {
      throw new StreamError(
        'CONFIG_INVALID',
        `stream agent on ${topic.name}: retryTopics is for app.agent (a stream's loop owns its order); use retry and the dead-letter topic`,
      );
    }
    this.#addAgent({ topic, options, handler: async () => undefined, stream: fn as StreamAgentFunction<unknown, unknown>, retryStages: [] });
    return this;
  }

  /**
   * Defines a table: keyed state partitioned like the topic of the agents that use it (list it in their
   * `tables` option; read and write it in a handler with `ctx.table(table)`), kept in memory and backed by
   * the compacted changelog topic `<appId>-<name>-changelog`, from which each assigned partition is
   * restored before its records are processed.
   *
   * @example
   * const counts = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
   * app.agent(clicks, { tables: [counts] }, async (click, ctx) => {
   *   const table = ctx.table(counts);
   *   table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
   * });
   */
  table<KS extends Schema, VS extends Schema>(name: string, options: TableOptions<KS, VS>): TableOf<KS, VS> {
    return this.#addTable(name, () => new Table(name, options) as TableOf<KS, VS>);
  }

  /**
   * Defines a windowed table: per key, a value for each window of event time (tumbling, or hopping with
   * `step`), open until the partition's stream time passes its end plus `grace`; then its final value is
   * emitted to `onClose.topic` and it is removed. Partitioned, restored and changelogged like {@link table}.
   *
   * @example
   * const perMinute = app.windowedTable('clicks-per-minute', {
   *   key: z.string(), value: z.number().int(), default: 0,
   *   window: { size: 60_000, grace: 10_000 },
   *   onClose: { topic: clickCounts, record: ({ key, window, value }) => ({ key, value: { page: key, start: window.start, count: value } }) },
   * });
   * app.agent(clicks, { tables: [perMinute] }, async (click, ctx) => {
   *   ctx.table(perMinute, { time: click.at }).update(click.page, (n = 0) => n + 1);
   * });
   */
  windowedTable<KS extends Schema, VS extends Schema, TKIn = never, TKOut = never, TVIn = never, TVOut = never>(
    name: string,
    options: WindowedTableOptions<KS, VS, TKIn, TKOut, TVIn, TVOut>,
  ): WindowedTableOf<KS, VS> {
    return this.#addTable(
      name,
      () => new WindowedTable(name, options as WindowedTableOptions<Schema, Schema, unknown, unknown, unknown, unknown>) as WindowedTableOf<KS, VS>,
    );
  }

  /**
   * Defines a global table: every instance holds all of it, the materialised view of a compacted topic read
   * from its earliest offset at start (the app is not ready until then) and followed afterwards (new
   * records applied within about `intervalMs`, default 500 ms). The source is a topic definition (reference
   * data another service writes) or a table's changelog (`{ of: table }`: a partitioned table this app's
   * agent writes, readable whole on every instance). Read-only: `get` and `has` from any handler, whatever
   * its record's partition. A record whose value fails the schema is skipped (logged, counted in
   * `health().globalTables`). Add global tables before `start()`.
   *
   * @example
   * const instruments = app.globalTable('instruments', { topic: instrumentTopic });
   * app.agent(orders, async (order, ctx) => {
   *   const instrument = instruments.get(order.symbol);
   *   if (!instrument) throw new NonRetryableError(`unknown symbol ${order.symbol}`);
   * });
   */
  globalTable<KIn, KOut, VIn, VOut>(name: string, options: GlobalTableOptions<KIn, KOut, VIn, VOut>): GlobalTable<KIn, KOut, VOut> {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: add global tables before start()`);
    if (this.#globalTables.has(name)) throw new StreamError('CONFIG_INVALID', `app ${this.id}: global table ${name} is defined twice`);
    const table = new GlobalTable<KIn, KOut, VOut>(name, options);
    this.#globalTables.set(name, table);
    return table;
  }

  #addTable<T extends AnyTable>(name: string, create: () => T): T {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: add tables before start()`);
    if (this.#tables.has(name)) throw new StreamError('CONFIG_INVALID', `app ${this.id}: table ${name} is defined twice`);
    const table = create();
    this.#tables.set(name, table);
    return table;
  }

  #addAgent(given: AgentEntry): void {
    let entry = given;
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: add agents before start()`);
    const tables = entry.options.tables ?? [];
    if (tables.length > 0) {
      const where = `agent on ${entry.topic.name}`;
      if (entry.stream) throw new StreamError('CONFIG_INVALID', `${where}: tables are for app.agent handlers, not stream agents`);
      if (entry.retryStages.length > 0)
        throw new StreamError('CONFIG_INVALID', `${where}: an agent with tables cannot use retryTopics (its partitions must run in offset order)`);
      // Updates are deduplicated by source offset, so a partition's records must apply in offset order:
      // 'key' ordering lets a record overtake an earlier one of another key, even at concurrency 1.
      if (entry.options.ordering !== undefined && entry.options.ordering !== 'partition') {
        throw new StreamError('CONFIG_INVALID', `${where}: an agent with tables runs each partition in offset order: drop ordering or use 'partition'`);
      }
      entry = { ...entry, options: { ...entry.options, ordering: 'partition' } };
      for (const table of tables) {
        if (this.#tables.get(table.name) !== table)
          throw new StreamError('CONFIG_INVALID', `${where}: table ${table.name} was not created by this app's table()`);
      }
    }
    checkAgentName(this.id, this.#agents, entry);
    this.#agents.push(entry);
  }

  /** Sends a record, validated against the topic's schemas before anything reaches the broker. */
  async send<KIn, KOut, VIn, VOut>(topic: Topic<KIn, KOut, VIn, VOut>, record: OutgoingRecord<KIn, VIn>): Promise<void> {
    const message = await topic.encode(record);
    await this.produce([message]);
  }

  /**
   * @internal sends encoded messages through the app's producer, connecting it on first use; sends made
   * at about the same time share one produce request.
   */
  produce(messages: readonly OutgoingMessage[]): Promise<void> {
    return this.#producer.send(messages);
  }

  /**
   * Registers how to ask a dependency whether it answers, under the name failure classification gives it
   * (`redis`, `elasticsearch`, `influxdb`, `kafka`, `http <host:port>`, or a {@link DependencyError}'s). While
   * an agent waits for that dependency, the check decides whether a record that keeps failing on it is the
   * record's fault (the check passes) or the dependency's; `/readyz` runs it too. Add checks before `start()`.
   *
   * @example
   * app.dependency('redis', async () => (await redis.ping()) === 'PONG');
   */
  dependency(name: string, check: DependencyCheck): this {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: add dependency checks before start()`);
    this.#checks.set(name, check);
    return this;
  }

  /** The dependency checks added with {@link dependency}, by name. */
  get dependencyChecks(): ReadonlyMap<string, DependencyCheck> {
    return this.#checks;
  }

  /**
   * Runs `fn` every `intervalMs` while the app runs, counted from start (runs do not drift). A run due while
   * the previous one still runs is skipped (and counted in `health().timers`), a failing run is logged and
   * counted, and `stop()` lets a run in progress finish within `shutdownTimeoutMs` before aborting its
   * `ctx.signal`. With `onLeader: true` it runs on one instance of the group only. Add timers before `start()`.
   *
   * @example
   * app.timer(60_000, async ({ signal }) => { await refreshRates(signal); }, { name: 'refresh-rates', onLeader: true });
   */
  timer(intervalMs: number, fn: TimerFunction, options: TimerOptions = {}): this {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: add timers before start()`);
    this.#timers.add(options.name, intervalSchedule(intervalMs), fn, options.onLeader ?? false);
    return this;
  }

  /**
   * Runs `fn` at the times a cron expression gives (5 fields, or 6 with seconds first), read in
   * `options.timezone` (default UTC), like {@link timer} otherwise. An invalid expression or time zone
   * throws `CONFIG_INVALID` here.
   *
   * @example
   * app.crontab('0 6 * * 1-5', sendDigest, { timezone: 'Europe/Berlin', onLeader: true });
   */
  crontab(expression: string, fn: TimerFunction, options: CrontabOptions = {}): this {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: add crontabs before start()`);
    this.#timers.add(options.name, cronSchedule(expression, options.timezone), fn, options.onLeader ?? false);
    return this;
  }

  /** Registers work to run at the end of `stop()` (close Redis, HTTP servers…), in reverse order. */
  onStop(hook: () => Promise<void>): void {
    this.#stopHooks.push(hook);
  }

  /** True when the app runs, its consumer joined the group (or it has no agents) and no table partition is restoring. */
  get ready(): boolean {
    // Global tables load before the app runs (see #startGlobalTables): 'running' implies they are loaded.
    return this.#state === 'running' && (this.#runtime?.joined ?? true) && (this.#runtime?.restoring ?? 0) === 0;
  }

  /**
   * A snapshot of the app for ops endpoints, metrics and tests: state, group membership, assignment, each
   * agent runner's in-flight work, buffered records, lag per partition and the age of the last commit.
   *
   * @example
   * const { agents } = app.health();
   * const stuck = agents.filter((a) => a.oldestInFlightMs > 60_000);
   */
  health(): AppHealth {
    const consumer = this.#runtime?.health() ?? NO_CONSUMER;
    const stuckAfterMs = this.stuckAfterMs;
    return {
      state: this.#state,
      ready: this.ready,
      failure: this.#failure,
      ...consumer,
      stuckAfterMs,
      stuck: stuckRecords(consumer.partitions, stuckAfterMs),
      timers: this.#timers.health(),
      globalTables: [...this.#globalTables.values()].map((t) => t.health()),
    };
  }

  /** How long a record may stay unfinished before it counts as stuck (see {@link AppOptions.stuckAfterMs}). */
  get stuckAfterMs(): number {
    return this.#options.stuckAfterMs ?? DEFAULT_STUCK_AFTER_MS;
  }

  /** @internal commits completed offsets now instead of at the next interval, for the test harness's `settle()`. */
  commitNow(): Promise<void> {
    return this.#runtime?.commit() ?? Promise.resolve();
  }

  /** Connects, checks (or creates) topics, joins the group and starts the agents. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: start() called twice`);
    this.#state = 'starting';
    try {
      const { sessionTimeoutMs, heartbeatIntervalMs } = this.#options;
      await this.#timers.join({ appId: this.id, transport: this.transport, sessionTimeoutMs, heartbeatIntervalMs });
      await this.#start();
      this.#timers.schedule();
      this.#state = 'running';
      this.log.info({ agents: this.health().agents.map((a) => a.name) }, 'app running');
    } catch (error) {
      this.#state = 'failed';
      this.#failure = toError(error);
      await this.#stopFollowing();
      await this.#timers.stop(0);
      await this.#shutdownClients();
      throw error;
    }
  }

  async #start(): Promise<void> {
    // Checked before anything is created: a restore that can never run would otherwise be retried for ever
    // while the app stays unready.
    if (!this.transport.readPartition && this.#agents.some((a) => (a.options.tables ?? []).length > 0)) {
      throw new StreamError(
        'CONFIG_INVALID',
        `app ${this.id}: the ${this.transport.name} transport cannot read a partition, so its tables cannot be restored from their changelogs (the kafkajs and platformatic transports can)`,
      );
    }
    // A windowed table's onClose topic is an output of the app like any other: checked (or created) at start.
    const closeTopics = [...this.#tables.values()].flatMap((t) => (t instanceof WindowedTable && t.emitsTo ? [t.emitsTo] : []));
    const plan = planTopology(this.#agents, { appId: this.id, outputs: [...(this.#options.outputs ?? []), ...closeTopics] });
    const admin = this.transport.admin();
    let tables: TablesByTopic = new Map();
    await admin.connect();
    try {
      await ensureTopics(admin, plan, { appId: this.id, createTopics: this.#options.createTopics });
      const usages = this.#agents.flatMap((a) => (a.options.tables ?? []).map((table) => ({ table, topic: a.topic.name })));
      // State belongs to the consumer group, like the offsets it goes with: two groups of one app (a canary,
      // a test run against a shared broker) must not restore or write each other's tables.
      tables = usages.length > 0 ? await ensureChangelogs(admin, this.#options.groupId ?? this.id, usages) : new Map();
    } finally {
      await admin.disconnect();
    }
    this.#tablesByTopic = tables;
    await this.#startGlobalTables();
    if (plan.agents.length === 0) return;
    const stateDir = this.#options.stateDir;
    if (stateDir !== undefined && tables.size > 0) {
      const local = await LocalStore.open({ dir: stateDir });
      for (const table of this.#tables.values()) table.useLocalStore(local);
      // After the consumer's final commit and checkpoint (stop hooks run once it has left the group).
      this.#stopHooks.push(async () => {
        await local.close();
        for (const table of this.#tables.values()) table.useLocalStore(undefined);
      });
    }
    const memberInfo = memberInfoOf(this.#advertisedUrl);
    const runtime = new AppRuntime({
      ...(this.#advertisedUrl === undefined ? {} : { advertisedUrl: this.#advertisedUrl }),
      ...(memberInfo === undefined ? {} : { memberInfo }),
      appId: this.id,
      transport: this.transport,
      plan,
      settings: this.#options,
      log: this.log,
      instrumentation: this.#instrumentation,
      stopping: this.#stopping.signal,
      produce: (messages) => this.produce(messages),
      checks: this.#checks,
      tables,
    });
    this.#runtime = runtime;
    await this.#producer.connect();
    await runtime.start((error) => {
      this.#failure = error;
      this.#state = 'failed';
      this.log.fatal({ err: error }, 'consumer stopped for good');
    });
  }

  /**
   * Loads every global table before any agent consumes (a handler never sees one half loaded), then leaves
   * them following their topics. Their source topics must exist: TOPIC_MISSING otherwise.
   */
  async #startGlobalTables(): Promise<void> {
    if (this.#globalTables.size === 0) return;
    if (!this.transport.readPartition) {
      throw new StreamError(
        'CONFIG_INVALID',
        `the ${this.transport.name} transport cannot read a partition: global tables need one (the kafkajs and platformatic transports can)`,
      );
    }
    const groupId = this.#options.groupId ?? this.id;
    const admin = this.transport.admin();
    let existing: Set<string>;
    await admin.connect();
    try {
      existing = new Set(await admin.listTopics());
    } finally {
      await admin.disconnect();
    }
    const signal = AbortSignal.any([this.#following.signal, this.#stopping.signal]);
    for (const table of this.#globalTables.values()) {
      const topic = table.resolveTopic(groupId);
      if (!existing.has(topic)) {
        throw new StreamError('TOPIC_MISSING', `global table ${table.name}: its topic ${topic} does not exist`, { context: { table: table.name, topic } });
      }
      this.#followers.push(followGlobalTable(this.transport, table, topic, signal, this.log.child({ component: 'global-table', globalTable: table.name })));
    }
    await Promise.all(this.#followers.map((f) => f.loaded));
  }

  async #stopFollowing(): Promise<void> {
    this.#following.abort(new StreamError('ABORTED', 'app stopping'));
    await Promise.all(this.#followers.map((f) => f.done));
  }

  /**
   * Stops gracefully: readiness goes false, fetching stops, in-flight records get `shutdownTimeoutMs` to
   * finish (then their `ctx.signal` aborts), completed offsets are committed, the group is left, producers
   * flushed and closed, and `onStop` hooks run. Safe to call more than once.
   */
  stop(): Promise<StopResult> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<StopResult> {
    const previous = this.#state;
    this.#state = 'stopping';
    this.#stopping.abort(new StreamError('ABORTED', 'app stopping'));
    const runtime = this.#runtime;
    const shutdownTimeoutMs = this.#options.shutdownTimeoutMs ?? 30_000;
    const [timedOut] = await Promise.all([
      runtime !== undefined && previous !== 'created' ? runtime.stop(shutdownTimeoutMs) : false,
      // Timer runs may still send: they end before the producer closes.
      this.#timers.stop(shutdownTimeoutMs),
    ]);
    await this.#stopFollowing();
    await this.#shutdownClients();
    this.#state = 'stopped';
    this.log.info({ timedOut }, 'app stopped');
    return { timedOut };
  }

  async #shutdownClients(): Promise<void> {
    await this.#producer.close().catch((e: unknown) => this.log.warn({ err: toError(e) }, 'producer disconnect failed'));
    for (const hook of this.#stopHooks.splice(0).reverse()) {
      await hook().catch((e: unknown) => this.log.warn({ err: toError(e) }, 'stop hook failed'));
    }
  }

  /**
   * Starts the app and runs it until SIGTERM or SIGINT, then stops gracefully and sets the exit code:
   * 0 after a clean stop, 1 when the shutdown deadline was hit or the app failed. A start-up error ends
   * the process with one line naming what to fix.
   */
  run(): Promise<void> {
    return runUntilSignalled(this);
  }
}

/**
 * Creates an app.
 *
 * @example
 * const app = createApp({ id: 'order-emailer', brokers: ['127.0.0.1:9092'] });
 * app.agent(orders, async (order, ctx) => { … });
 * await app.run();
 */
export function createApp(options: AppOptions): App {
  return new App(options);
}
