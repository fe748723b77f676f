import type { AgentHandler, AgentOptions } from './agent.js';
import { Coalescer } from './batcher.js';
import { StreamError, toError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import type { OutgoingRecord } from './record.js';
import { AgentRunner } from './runtime/agent-runner.js';
import { resolveRetry } from './runtime/backoff.js';
import { ConsumerRuntime } from './runtime/consumer-runtime.js';
import { retryStages, type RetryStage } from './runtime/retry-topics.js';
import { noInstrumentation, type Instrumentation } from './runtime/instrumentation.js';
import { createStreamAgent, type StreamAgentFunction } from './stream.js';
import type { AnyTopic, KeyOf, RecordSender, Topic, ValueOf } from './topic.js';
import { agentName, deadLetterTopicName } from './topology.js';
import { KafkaTransport, type KafkaTransportOptions } from './transport/kafka/index.js';
import type { OutgoingMessage, Transport, TransportAdmin, TransportProducer } from './transport/transport.js';

/** How long the final commit and leaving the group may take once in-flight records are done. */
const LEAVE_TIMEOUT_MS = 10_000;
/** After a stop, how long open handles (a client's socket, a user's timer) may keep `run()`'s process alive. */
const EXIT_GRACE_MS = 5_000;

/** Options of {@link createApp}. */
export interface AppOptions {
  /** The app's id: consumer group id and transactional id prefix. */
  readonly id: string;
  /** Kafka bootstrap brokers (ignored when `transport` is given). */
  readonly brokers?: readonly string[];
  /** TLS, SASL and timeouts for the kafkajs transport. */
  readonly kafka?: Omit<KafkaTransportOptions, 'brokers' | 'clientId' | 'logger'>;
  /** Another transport, e.g. `new MemoryTransport()` in tests. */
  readonly transport?: Transport;
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
  /** How often completed offsets are committed. Default 1000 ms. */
  readonly commitIntervalMs?: number;
  /** How long `stop()` lets in-flight records finish before aborting them. Default 30 s. */
  readonly shutdownTimeoutMs?: number;
  /** Records and bytes buffered per partition before it is paused. Default 1,000 records / 16 MiB. */
  readonly buffer?: { readonly maxRecords?: number; readonly maxBytes?: number };
  readonly sessionTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly rebalanceTimeoutMs?: number;
  /** Largest fetch per partition. Default 1 MiB. */
  readonly maxBytesPerPartition?: number;
}

/** Where the app is in its life. */
export type AppState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** How `stop()` ended. */
export interface StopResult {
  /** True when in-flight records had to be aborted at the deadline. */
  readonly timedOut: boolean;
}

interface AgentEntry {
  readonly topic: AnyTopic;
  readonly options: AgentOptions;
  readonly handler: AgentHandler<unknown, unknown>;
  /** From `options.retryTopics`, validated when the agent is added. */
  readonly retryStages: readonly RetryStage[];
  readonly stream?: StreamAgentFunction<unknown, unknown>;
}

/** The agent's name in logs, metrics and errors: its `name` option, else `<topic>-agent`. */
const nameOf = (entry: Pick<AgentEntry, 'options' | 'topic'>): string => agentName(entry.topic.name, entry.options.name);

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
  readonly #deadline = new AbortController();
  #state: AppState = 'created';
  #producer: TransportProducer | undefined;
  #producerReady: Promise<TransportProducer> | undefined;
  #runtime: ConsumerRuntime | undefined;
  #runners: AgentRunner[] = [];
  #stopped: Promise<StopResult> | undefined;
  #failure: Error | undefined;
  readonly #stopHooks: (() => Promise<void>)[] = [];

  constructor(options: AppOptions) {
    if (!/^[A-Za-z0-9._-]+$/.test(options.id)) throw new StreamError('CONFIG_INVALID', `invalid app id ${JSON.stringify(options.id)}`);
    this.id = options.id;
    this.#options = options;
    this.log = options.logger ?? createLogger({ name: options.id });
    this.#instrumentation = options.instrumentation ?? noInstrumentation;
    if (options.transport) {
      this.transport = options.transport;
    } else {
      if (!options.brokers || options.brokers.length === 0) {
        throw new StreamError('CONFIG_INVALID', `app ${options.id}: give \`brokers\` (e.g. KAFKA_BROKERS=127.0.0.1:9092) or a \`transport\``);
      }
      this.transport = new KafkaTransport({ ...options.kafka, brokers: [...options.brokers], clientId: options.id, logger: this.log.child({ component: 'kafkajs' }) });
    }
  }

  get state(): AppState {
    return this.#state;
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
  agent<T extends AnyTopic>(topic: T, options: AgentOptions, handler: AgentHandler<KeyOf<T>, ValueOf<T>>): this;
  agent<T extends AnyTopic>(
    topic: T,
    optionsOrHandler: AgentOptions | AgentHandler<KeyOf<T>, ValueOf<T>>,
    maybeHandler?: AgentHandler<KeyOf<T>, ValueOf<T>>,
  ): this {
    const [options, handler] = typeof optionsOrHandler === 'function' ? [{}, optionsOrHandler] : [optionsOrHandler, maybeHandler];
    if (!handler) throw new StreamError('CONFIG_INVALID', `agent on ${topic.name}: a handler is required`);
    this.#addAgent({ topic, options, handler: handler as AgentHandler<unknown, unknown>, retryStages: retryStages(topic.name, options.retryTopics?.delaysMs ?? []) });
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
      throw new StreamError('CONFIG_INVALID', `stream agent on ${topic.name}: retryTopics is for app.agent (a stream's loop owns its order); use retry and the dead-letter topic`);
    }
    this.#addAgent({ topic, options, handler: async () => undefined, stream: fn as StreamAgentFunction<unknown, unknown>, retryStages: [] });
    return this;
  }

  #addAgent(entry: AgentEntry): void {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: add agents before start()`);
    const name = nameOf(entry);
    if (this.#agents.some((a) => nameOf(a) === name)) {
      throw new StreamError('CONFIG_INVALID', `app ${this.id}: two agents named ${name}; give one a \`name\``);
    }
    this.#agents.push(entry);
  }

  /** Sends a record, validated against the topic's schemas before anything reaches the broker. */
  async send<KIn, KOut, VIn, VOut>(topic: Topic<KIn, KOut, VIn, VOut>, record: OutgoingRecord<KIn, VIn>): Promise<void> {
    const message = await topic.encode(record);
    await this.produce([message]);
  }

  /**
   * @internal sends encoded messages through the app's producer, connecting it on first use. Sends made
   * at about the same time (the records of a concurrent agent) share one produce request, like Kafka's
   * `linger.ms`: one request per record would cap throughput at one broker round trip per record.
   */
  produce(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 1) return this.#sends.add(messages[0]!);
    return Promise.all(messages.map((m) => this.#sends.add(m))).then(() => undefined);
  }

  readonly #sends = new Coalescer<OutgoingMessage>(
    async (messages) => {
      const producer = await this.#connectProducer();
      await producer.send(messages);
    },
    { maxBatch: 1000, maxWaitMs: 1 },
  );

  #connectProducer(): Promise<TransportProducer> {
    this.#producerReady ??= (async () => {
      const producer = this.transport.producer();
      await producer.connect();
      this.#producer = producer;
      return producer;
    })().catch((error: unknown) => {
      this.#producerReady = undefined;
      throw error;
    });
    return this.#producerReady;
  }

  /** Registers work to run at the end of `stop()` (close Redis, HTTP servers…), in reverse order. */
  onStop(hook: () => Promise<void>): void {
    this.#stopHooks.push(hook);
  }

  /** True when the app runs and its consumer joined the group (or it has no agents). */
  get ready(): boolean {
    return this.#state === 'running' && (this.#runtime?.joined ?? true);
  }

  /** @internal the consumer runtime, for metrics and health. */
  get runtime(): ConsumerRuntime | undefined {
    return this.#runtime;
  }

  /** @internal agent runners, for metrics and health. */
  get runners(): readonly AgentRunner[] {
    return this.#runners;
  }

  /** Connects, checks (or creates) topics, joins the group and starts the agents. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new StreamError('STATE_INVALID', `app ${this.id}: start() called twice`);
    this.#state = 'starting';
    try {
      await this.#start();
      this.#state = 'running';
      this.log.info({ agents: this.#runners.map((r) => r.name) }, 'app running');
    } catch (error) {
      this.#state = 'failed';
      this.#failure = toError(error);
      await this.#shutdownClients();
      throw error;
    }
  }

  async #start(): Promise<void> {
    const exactlyOnceTopics = new Set<string>();
    for (const topicName of new Set(this.#agents.map((a) => a.topic.name))) {
      const flags = new Set(this.#agents.filter((a) => a.topic.name === topicName).map((a) => a.options.exactlyOnce === true));
      if (flags.size > 1) throw new StreamError('CONFIG_INVALID', `agents on ${topicName} disagree on exactlyOnce`);
      if (flags.has(true)) exactlyOnceTopics.add(topicName);
    }
    // Each agent consumes its own retry topics: two agents of a topic with the same delay would both take
    // each other's retries.
    const retryOwners = new Map<string, string>();
    for (const a of this.#agents) {
      for (const stage of a.retryStages) {
        const name = nameOf(a);
        const other = retryOwners.get(stage.topic);
        if (other !== undefined) throw new StreamError('CONFIG_INVALID', `agents ${other} and ${name} would share the retry topic ${stage.topic}: give them different delays`);
        retryOwners.set(stage.topic, name);
        if (a.options.exactlyOnce === true) exactlyOnceTopics.add(stage.topic);
      }
    }
    const admin = this.transport.admin();
    await admin.connect();
    try {
      await this.#ensureTopics(admin);
    } finally {
      await admin.disconnect();
    }
    if (this.#agents.length === 0) return;
    const host = {
      appId: this.id,
      instrumentation: this.#instrumentation,
      stopping: this.#stopping.signal,
      deadline: this.#deadline.signal,
      produce: (messages: readonly OutgoingMessage[]) => this.produce(messages),
      dequeued: (d: Parameters<ConsumerRuntime['dequeued']>[0]) => runtime.dequeued(d),
      finished: (d: Parameters<ConsumerRuntime['finished']>[0], outputs: readonly OutgoingMessage[]) => runtime.finished(d, outputs),
    };
    this.#runners = this.#agents.flatMap((entry) => {
      const name = nameOf(entry);
      const isStream = entry.stream !== undefined;
      const prefetch = (entry.options as { prefetch?: number }).prefetch ?? 1000;
      const log = this.log.child({ agent: name, topic: entry.topic.name });
      const handler = entry.stream ? createStreamAgent(entry.stream, this.#stopping.signal, log) : entry.handler;
      const concurrency = isStream ? prefetch : Math.max(1, entry.options.concurrency ?? 1);
      const common = {
        name,
        topic: entry.topic,
        handler,
        concurrency,
        retry: resolveRetry(entry.options.retry),
        deadLetterTopic: entry.options.deadLetter === false ? null : (entry.options.deadLetter?.topic ?? deadLetterTopicName(entry.topic.name)),
        exactlyOnce: entry.options.exactlyOnce === true,
        retryStages: entry.retryStages,
      };
      const main = new AgentRunner({ ...common, ordering: isStream ? 'none' : (entry.options.ordering ?? 'key'), stage: 0, log }, host);
      // A retry stage keeps its partitions in order: the head waits until due, and what follows is due later.
      const stages = entry.retryStages.map(
        (stage, i) => new AgentRunner({ ...common, ordering: 'partition', stage: i + 1, log: this.log.child({ agent: name, topic: stage.topic }) }, host),
      );
      return [main, ...stages];
    });
    const runtime = new ConsumerRuntime({
      appId: this.id,
      transport: this.transport,
      runners: this.#runners,
      buffer: { maxRecords: this.#options.buffer?.maxRecords ?? 1000, maxBytes: this.#options.buffer?.maxBytes ?? 16 * 1024 * 1024 },
      commitIntervalMs: this.#options.commitIntervalMs ?? 1000,
      log: this.log.child({ component: 'consumer' }),
      instrumentation: this.#instrumentation,
      exactlyOnceTopics,
      consumer: {
        groupId: this.#options.groupId ?? this.id,
        topics: [...new Set(this.#runners.map((r) => r.source))],
        fromBeginning: (this.#options.startFrom ?? 'earliest') === 'earliest',
        sessionTimeoutMs: this.#options.sessionTimeoutMs ?? 30_000,
        heartbeatIntervalMs: this.#options.heartbeatIntervalMs ?? 3_000,
        rebalanceTimeoutMs: this.#options.rebalanceTimeoutMs ?? 60_000,
        readCommitted: true,
        maxBytesPerPartition: this.#options.maxBytesPerPartition ?? 1024 * 1024,
      },
    });
    this.#runtime = runtime;
    await this.#connectProducer();
    await runtime.start((error) => {
      this.#failure = error;
      this.#state = 'failed';
      this.log.fatal({ err: error }, 'consumer stopped for good');
    });
  }

  async #ensureTopics(admin: TransportAdmin): Promise<void> {
    const existing = new Set(await admin.listTopics());
    const sources = [...new Map([...this.#agents.map((a) => a.topic), ...(this.#options.outputs ?? [])].map((t) => [t.name, t])).values()];
    const missing = sources.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      if (!this.#options.createTopics) {
        throw new StreamError(
          'TOPIC_MISSING',
          `app ${this.id}: topic(s) ${missing.map((t) => t.name).join(', ')} do not exist: create them (\`stream topics create\`) or set createTopics: true`,
        );
      }
      await admin.createTopics(
        missing.map((t) => ({
          name: t.name,
          partitions: t.partitions ?? 1,
          config: { ...t.config, ...(t.retentionMs === undefined ? {} : { 'retention.ms': String(t.retentionMs) }) },
        })),
      );
    }
    // Dead-letter and retry topics are created when missing, with the partition count of their source.
    const derivedTopics = new Map<string, string>();
    for (const a of this.#agents) {
      if (a.options.deadLetter !== false) derivedTopics.set(a.options.deadLetter?.topic ?? deadLetterTopicName(a.topic.name), a.topic.name);
      for (const stage of a.retryStages) derivedTopics.set(stage.topic, a.topic.name);
    }
    const toCreate = [...derivedTopics].filter(([derived]) => !existing.has(derived));
    if (toCreate.length > 0) {
      const specs = await Promise.all(
        toCreate.map(async ([derived, source]) => ({ name: derived, partitions: Math.max(1, (await admin.endOffsets(source)).length) })),
      );
      await admin.createTopics(specs);
    }
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
    let timedOut = false;
    const runtime = this.#runtime;
    if (runtime && previous !== 'created') {
      runtime.beginStop();
      const timeoutMs = this.#options.shutdownTimeoutMs ?? 30_000;
      const idle = Promise.all(this.#runners.map((r) => r.whenIdle()));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), timeoutMs)));
      if ((await Promise.race([idle, deadline])) === 'deadline') {
        timedOut = true;
        this.log.warn({ timeoutMs }, 'shutdown deadline passed: aborting in-flight records');
        this.#deadline.abort(new StreamError('SHUTDOWN_TIMEOUT', `shutdown deadline of ${timeoutMs} ms passed`));
        await Promise.race([idle, new Promise((r) => setTimeout(r, 2000))]);
      }
      clearTimeout(timer);
      // The final commit and leaving the group talk to the broker: bounded, so that a broker that does not
      // answer cannot keep a stopping process alive (what was not committed is consumed again).
      let leaveTimer: NodeJS.Timeout | undefined;
      const leaveDeadline = new Promise<'deadline'>((resolve) => (leaveTimer = setTimeout(() => resolve('deadline'), LEAVE_TIMEOUT_MS)));
      try {
        if ((await Promise.race([runtime.finishStop(), leaveDeadline])) === 'deadline') {
          timedOut = true;
          this.log.error({ timeoutMs: LEAVE_TIMEOUT_MS }, 'final commit and leaving the group did not finish in time: stopping without them');
        }
      } catch (error) {
        this.log.error({ err: toError(error) }, 'error while leaving the group');
      } finally {
        clearTimeout(leaveTimer);
      }
    }
    await this.#shutdownClients();
    this.#state = 'stopped';
    this.log.info({ timedOut }, 'app stopped');
    return { timedOut };
  }

  async #shutdownClients(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    this.#producerReady = undefined;
    if (producer) await producer.disconnect().catch((e: unknown) => this.log.warn({ err: toError(e) }, 'producer disconnect failed'));
    for (const hook of this.#stopHooks.splice(0).reverse()) {
      await hook().catch((e: unknown) => this.log.warn({ err: toError(e) }, 'stop hook failed'));
    }
  }

  /**
   * Starts the app and runs it until SIGTERM or SIGINT, then stops gracefully and sets the exit code:
   * 0 after a clean stop, 1 when the shutdown deadline was hit or the app failed. A start-up error ends
   * the process with one line naming what to fix.
   */
  async run(): Promise<void> {
    try {
      await this.start();
    } catch (error) {
      const e = toError(error);
      this.log.fatal({ err: e }, 'start failed');
      process.stderr.write(`${this.id}: cannot start: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    const signal = await new Promise<string>((resolve) => {
      const onSignal = (name: string) => () => resolve(name);
      process.once('SIGTERM', onSignal('SIGTERM'));
      process.once('SIGINT', onSignal('SIGINT'));
      const poll = setInterval(() => {
        if (this.#state === 'failed') resolve('failure');
      }, 500);
      poll.unref();
    });
    this.log.info({ signal }, 'stopping');
    const { timedOut } = await this.stop();
    const code = timedOut || signal === 'failure' ? 1 : 0;
    process.exitCode = code;
    // Everything of ours is closed; a handle left open elsewhere must not turn a stop into a hang that an
    // orchestrator ends with SIGKILL. The timer is unref'd: a process with nothing left exits before it.
    setTimeout(() => {
      this.log.warn({ graceMs: EXIT_GRACE_MS, handles: process.getActiveResourcesInfo() }, 'handles still open after the stop: exiting');
      process.exit(code);
    }, EXIT_GRACE_MS).unref();
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
