/**
 * The production transport: kafkajs 2.2.x behind the {@link Transport} seam.
 *
 * What shapes this file is how kafkajs consumes. Its fetcher awaits every batch of one fetch before it
 * fetches again, so a slow `eachBatch` stalls every partition led by that broker (and the heartbeats).
 * We therefore never process inside `eachBatch`: the batch goes to the runtime synchronously, the runtime
 * says how many records (a prefix) it buffered, we move kafkajs' fetch position past exactly those and
 * return. When the runtime's buffer is full it pauses the partition (through {@link TransportConsumer.pause});
 * on resume kafkajs fetches again from that position, so nothing is skipped or delivered twice.
 */
import type { ConnectionOptions } from 'node:tls';
import {
  Kafka,
  Partitioners,
  logLevel as KafkaJsLogLevel,
  type Admin,
  type Consumer,
  type IHeaders,
  type KafkaConfig,
  type KafkaMessage,
  type LogEntry,
  type Message,
  type Producer,
  type RetryOptions,
  type SASLOptions,
  type TopicMessages,
  type Transaction,
} from 'kafkajs';
import { StreamError, toError, type ErrorContext } from '../errors.js';
import { produceRequests } from './produce-requests.js';
import type {
  Assignment,
  ConsumerListener,
  ConsumerOptions,
  OutgoingMessage,
  PartitionOffset,
  ProducerOptions,
  RawHeaders,
  RawMessage,
  TopicPartition,
  TopicSpec,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
  TransportTransaction,
} from './transport.js';

// ---------------------------------------------------------------------------------------------------------
// Options and logging
// ---------------------------------------------------------------------------------------------------------

/** SASL credentials for the mechanisms the transport supports. */
export interface KafkaSaslOptions {
  readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  readonly username: string;
  /** Never logged: the log bridge removes it from every kafkajs log line. */
  readonly password: string;
}

/** Severity of a kafkajs log line. */
export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** One kafkajs log line, credentials already removed. */
export interface KafkaLogEntry {
  readonly level: KafkaLogLevel;
  /** The kafkajs component: `Consumer`, `Runner`, `Connection`… */
  readonly namespace: string;
  readonly message: string;
  /** What kafkajs attached to the line (broker, groupId, error, stack…). */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Receives kafkajs log lines as plain entries. */
export type KafkaLogFunction = (entry: KafkaLogEntry) => void;

/** A pino-like logger (a pino `Logger` fits): kafkajs lines are written as `logger[level](fields, message)`. */
export interface KafkaLogSink {
  error(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

/** Options of {@link KafkaTransport}. */
export interface KafkaTransportOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** Client id sent to the brokers (quotas, broker logs). */
  readonly clientId: string;
  /** TLS: `true` for the system CAs, or Node TLS options (ca, cert, key, servername…). */
  readonly ssl?: boolean | ConnectionOptions;
  /** SASL PLAIN or SCRAM credentials (use with `ssl` outside a trusted network). */
  readonly sasl?: KafkaSaslOptions;
  /** Time to establish a connection. kafkajs default 1000 ms. */
  readonly connectionTimeoutMs?: number;
  /** Time to wait for a response to a request. kafkajs default 30000 ms. */
  readonly requestTimeoutMs?: number;
  /** Where kafkajs logs go. Default: warnings and errors to stderr as JSON lines. */
  readonly logger?: KafkaLogFunction | KafkaLogSink;
  /** The most verbose kafkajs level passed on. Default `'warn'`: kafkajs logs every pause/resume at info. */
  readonly logLevel?: KafkaLogLevel | 'nothing';
  /**
   * How many times in a row the consumer restarts itself after a retriable failure (broker or coordinator
   * gone, retries exhausted) without getting an assignment in between, before it reports a crash. Default 5.
   */
  readonly maxConsumerRestarts?: number;
  /**
   * How long a fetch waits for data (kafkajs `maxWaitTimeInMs`). kafkajs also sleeps this long when every
   * partition is paused (consumerGroup.js fetch), so it bounds how late a resumed partition is fetched
   * again; the kafkajs default of 5 s would cap a consumer whose buffers keep filling. The price of a low
   * value is idle fetch requests (1000 / fetchMaxWaitMs per second per broker). Default 100 ms.
   */
  readonly fetchMaxWaitMs?: number;
}

const KAFKAJS_LEVELS: Record<KafkaLogLevel | 'nothing', KafkaJsLogLevel> = {
  nothing: KafkaJsLogLevel.NOTHING,
  error: KafkaJsLogLevel.ERROR,
  warn: KafkaJsLogLevel.WARN,
  info: KafkaJsLogLevel.INFO,
  debug: KafkaJsLogLevel.DEBUG,
};

function levelName(level: KafkaJsLogLevel): KafkaLogLevel {
  switch (level) {
    case KafkaJsLogLevel.ERROR:
      return 'error';
    case KafkaJsLogLevel.WARN:
      return 'warn';
    case KafkaJsLogLevel.INFO:
      return 'info';
    default:
      return 'debug';
  }
}

const SECRET_KEY = /password|passwd|secret|token|sasl|authori[sz]ation|credential/i;
const REDACTED = '[redacted]';

/**
 * Copies a log value into something JSON-safe with secrets removed: keys that name a credential are
 * redacted wherever they are, and the configured password is cut out of any string (an error message
 * could quote it). Depth is bounded because kafkajs sometimes attaches whole request objects.
 */
function scrub(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') {
    let text = value;
    for (const secret of secrets) if (secret.length > 0) text = text.split(secret).join(REDACTED);
    return text;
  }
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (Buffer.isBuffer(value)) return `<Buffer ${value.length} bytes>`;
  if (depth >= 4) return '[…]';
  if (value instanceof Error) {
    return { name: value.name, message: scrub(value.message, secrets), stack: scrub(value.stack, secrets) };
  }
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => scrub(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = SECRET_KEY.test(key) ? REDACTED : scrub(v, secrets, depth + 1);
  return out;
}

function stderrJsonLines(entry: KafkaLogEntry): void {
  if (entry.level !== 'error' && entry.level !== 'warn') return;
  const line = { time: new Date().toISOString(), level: entry.level, component: 'kafkajs', namespace: entry.namespace, msg: entry.message, ...entry.fields };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

function messageText(message: unknown, secrets: readonly string[]): string {
  const text = typeof message === 'string' ? message : message instanceof Error ? message.message : JSON.stringify(scrub(message, secrets)) ?? '';
  return scrub(text, secrets) as string;
}

/** Bridges kafkajs' `logCreator` to our logger option. */
function createLogCreator(logger: KafkaLogFunction | KafkaLogSink | undefined, secrets: readonly string[]): NonNullable<KafkaConfig['logCreator']> {
  const emit: KafkaLogFunction =
    logger === undefined
      ? stderrJsonLines
      : typeof logger === 'function'
        ? logger
        : (entry) => logger[entry.level]({ namespace: entry.namespace, ...entry.fields }, entry.message);
  return () => (entry: LogEntry) => {
    // kafkajs types the content as `any`; treat it as unknown data.
    const content: Readonly<Record<string, unknown>> = entry.log;
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(content)) {
      if (key === 'message' || key === 'timestamp' || key === 'logger') continue;
      fields[key] = SECRET_KEY.test(key) ? REDACTED : scrub(value, secrets);
    }
    try {
      emit({ level: levelName(entry.level), namespace: entry.namespace, message: messageText(content.message, secrets), fields });
    } catch {
      // A failing log sink must never break the client it logs for.
    }
  };
}

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

/** The error and its causes (kafkajs wraps: NumberOfRetriesExceeded → NonRetriable → ProtocolError). */
function* errorChain(error: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0 && seen.size < 20) {
    const current = pending.shift();
    if (current === null || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    const record = current as Record<string, unknown>;
    yield record;
    pending.push(record.cause);
    // KafkaJSAggregateError (createTopics) carries several errors.
    if (Array.isArray(record.errors)) pending.push(...(record.errors as unknown[]));
  }
}

/** kafkajs protocol error types (`UNKNOWN_TOPIC_OR_PARTITION`…) found anywhere in the cause chain. */
function protocolTypes(error: unknown): string[] {
  const types: string[] = [];
  for (const e of errorChain(error)) if (typeof e.type === 'string') types.push(e.type);
  return types;
}

/**
 * A newer producer with our transactional id took over. kafkajs 2.2.4 knows INVALID_PRODUCER_EPOCH (47);
 * PRODUCER_FENCED (90, newer brokers and request versions) is unknown to it and arrives as
 * KAFKAJS_UNKNOWN_ERROR_CODE with `code: 90`, so both are recognised by code too.
 */
function isFenced(error: unknown): boolean {
  for (const e of errorChain(error)) {
    if (e.type === 'INVALID_PRODUCER_EPOCH' || e.type === 'PRODUCER_FENCED') return true;
    if (e.code === 47 || e.code === 90) return true;
  }
  return false;
}

/** Wraps a kafkajs failure into a `TRANSPORT_FAILED` StreamError, keeping the original as `cause`. */
function transportError(action: string, error: unknown, context: ErrorContext = {}): StreamError {
  if (error instanceof StreamError) return error;
  const cause = toError(error);
  const type = protocolTypes(error)[0];
  if (isFenced(error)) {
    return new StreamError(
      'TRANSPORT_FAILED',
      `${action}: producer fenced: a newer producer with the same transactional id took over (or the broker expired the transaction); this producer cannot be used again (${cause.message})`,
      { cause, context: { ...context, fenced: true, ...(type === undefined ? {} : { kafkaError: type }) } },
    );
  }
  return new StreamError('TRANSPORT_FAILED', `${action}: ${cause.message}`, {
    cause,
    context: { ...context, ...(type === undefined ? {} : { kafkaError: type }) },
  });
}

function topicMissing(topics: readonly string[], action: string): StreamError {
  const list = topics.join(', ');
  return new StreamError(
    'TOPIC_MISSING',
    `${action}: topic${topics.length > 1 ? 's' : ''} ${list} ${topics.length > 1 ? 'do' : 'does'} not exist (the broker does not create topics on use): ` +
      `create ${topics.length > 1 ? 'them' : 'it'} first, e.g. \`kafka-topics.sh --bootstrap-server <broker> --create --topic ${topics[0] ?? ''} --partitions <n>\`, ` +
      `or start the app with \`createTopics: true\``,
    { context: { topics: list } },
  );
}

// ---------------------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------------------

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

function toBuffer(value: Buffer | string): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

/** kafkajs headers may be strings, arrays (a repeated header name) or undefined: we keep the last value. */
function toRawHeaders(headers: IHeaders | undefined): RawHeaders {
  const out: Record<string, Buffer> = {};
  if (!headers) return out;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      const last = value[value.length - 1];
      if (last !== undefined) out[name] = toBuffer(last);
    } else {
      out[name] = toBuffer(value);
    }
  }
  return out;
}

function toRawMessage(message: KafkaMessage): RawMessage {
  return {
    key: message.key,
    value: message.value,
    headers: toRawHeaders(message.headers),
    offset: message.offset,
    timestamp: message.timestamp,
  };
}

function groupByTopic(partitions: readonly TopicPartition[]): { topic: string; partitions: number[] }[] {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of partitions) {
    const list = byTopic.get(topic) ?? [];
    if (!list.includes(partition)) list.push(partition);
    byTopic.set(topic, list);
  }
  return [...byTopic].map(([topic, list]) => ({ topic, partitions: list }));
}

function topicMessages(messages: readonly OutgoingMessage[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const m of messages) {
    const list = byTopic.get(m.topic) ?? [];
    list.push({ key: m.key, value: m.value, headers: { ...m.headers }, ...(m.partition === undefined ? {} : { partition: m.partition }) });
    byTopic.set(m.topic, list);
  }
  return [...byTopic].map(([topic, list]) => ({ topic, messages: list }));
}

// ---------------------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------------------

/**
 * What consumers, producers and admins of one transport share: the kafkajs client and the topics seen
 * to exist.
 */
class Cluster {
  readonly kafka: Kafka;
  /** Topics seen to exist: checked once per topic, so a topic deleted later is not noticed here. */
  readonly #knownTopics = new Set<string>();

  constructor(kafka: Kafka) {
    this.kafka = kafka;
  }

  /**
   * The subset of `topics` that does not exist. A metadata request for a missing topic makes kafkajs retry
   * UNKNOWN_TOPIC_OR_PARTITION (for an idempotent producer: forever), so we ask for the topic list instead.
   */
  async missingTopics(topics: readonly string[], admin?: Admin): Promise<string[]> {
    const unknown = [...new Set(topics)].filter((t) => !this.#knownTopics.has(t));
    if (unknown.length === 0) return [];
    const existing = new Set(admin ? await admin.listTopics() : await this.#listTopics());
    for (const t of unknown) if (existing.has(t)) this.#knownTopics.add(t);
    return unknown.filter((t) => !existing.has(t));
  }

  /** Lists topics with a short-lived admin client, always disconnected again. */
  async #listTopics(): Promise<string[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      return await admin.listTopics();
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/**
 * The kafkajs transport: one `Kafka` client; consumers, producers and admins are created from it.
 *
 * @example
 * const transport = new KafkaTransport({ brokers: ['127.0.0.1:9092'], clientId: 'order-emailer', logger: log.child({ component: 'kafkajs' }) });
 */
export class KafkaTransport implements Transport {
  readonly name = 'kafka';
  /** The kafkajs client, for what the transport does not cover. */
  readonly kafka: Kafka;
  readonly #cluster: Cluster;
  readonly #maxConsumerRestarts: number;
  readonly #fetchMaxWaitMs: number;

  constructor(options: KafkaTransportOptions) {
    if (options.brokers.length === 0) throw new StreamError('CONFIG_INVALID', 'kafka transport: `brokers` is empty (e.g. KAFKA_BROKERS=127.0.0.1:9092)');
    const secrets = options.sasl ? [options.sasl.password] : [];
    const sasl: SASLOptions | undefined = options.sasl
      ? { mechanism: options.sasl.mechanism, username: options.sasl.username, password: options.sasl.password }
      : undefined;
    this.kafka = new Kafka({
      brokers: [...options.brokers],
      clientId: options.clientId,
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
      ...(sasl === undefined ? {} : { sasl }),
      ...(options.connectionTimeoutMs === undefined ? {} : { connectionTimeout: options.connectionTimeoutMs }),
      ...(options.requestTimeoutMs === undefined ? {} : { requestTimeout: options.requestTimeoutMs }),
      logLevel: KAFKAJS_LEVELS[options.logLevel ?? 'warn'],
      logCreator: createLogCreator(options.logger, secrets),
    });
    this.#cluster = new Cluster(this.kafka);
    this.#maxConsumerRestarts = options.maxConsumerRestarts ?? 5;
    this.#fetchMaxWaitMs = options.fetchMaxWaitMs ?? 100;
  }

  /** A group member consuming `options.topics`; see {@link TransportConsumer}. */
  consumer(options: ConsumerOptions): TransportConsumer {
    return new KafkaConsumer(this.#cluster, options, this.#maxConsumerRestarts, this.#fetchMaxWaitMs);
  }

  /** An idempotent producer; transactional when `options.transactionalId` is given. */
  producer(options: ProducerOptions = {}): TransportProducer {
    return new KafkaProducer(this.#cluster, options);
  }

  /** An admin client for topics and offsets. */
  admin(): TransportAdmin {
    return new KafkaAdmin(this.#cluster);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Consumer
// ---------------------------------------------------------------------------------------------------------

type ConsumerState = 'idle' | 'starting' | 'running' | 'crashed' | 'stopping' | 'stopped';

/**
 * Consumer group member. Notes on kafkajs behaviour it relies on or works around:
 *
 * - `autoCommit: false`: kafkajs never commits; the runtime commits through {@link commit}.
 * - The generation: kafkajs' GROUP_JOIN event does not carry the group's generationId (consumerGroup.js
 *   emits `{ groupId, memberId, leaderId, isLeader, memberAssignment, groupProtocol, duration }`) and the
 *   ConsumerGroup object is private, so `Assignment.generation` is this member's own join counter: it
 *   increases with every assignment (also across kafkajs restarts) but is not Kafka's generationId and is
 *   not comparable between members.
 * - Pause state: kafkajs keeps a paused partition paused across rebalances (SubscriptionState.assign does
 *   not touch it), but forgets all pauses when it restarts after a crash (a new ConsumerGroup). The
 *   runtime treats a newly assigned partition as fresh (unpaused), so on every assignment we resume
 *   partitions we lost and re-apply pauses of those we kept.
 */
class KafkaConsumer implements TransportConsumer {
  readonly #cluster: Cluster;
  readonly #options: ConsumerOptions;
  readonly #consumer: Consumer;
  readonly #maxRestarts: number;
  #state: ConsumerState = 'idle';
  #listener: ConsumerListener | undefined;
  #generation = 0;
  #restartsSinceJoin = 0;
  readonly #assigned = new Set<string>();
  /** Partitions the runtime paused: the truth that kafkajs' own pause state is re-synchronised with. */
  readonly #paused = new Map<string, TopicPartition>();
  /** Counts COMMIT_OFFSETS events: tells a real commit from kafkajs' silent no-op on a stopped runner. */
  #commitsSeen = 0;
  #commits: Promise<void> = Promise.resolve();
  #startError: Error | undefined;
  #starting: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;

  constructor(cluster: Cluster, options: ConsumerOptions, maxRestarts: number, fetchMaxWaitMs: number) {
    this.#cluster = cluster;
    this.#options = options;
    this.#maxRestarts = maxRestarts;
    const retry: RetryOptions = { retries: 5, restartOnFailure: (error) => Promise.resolve(this.#shouldRestart(error)) };
    try {
      this.#consumer = cluster.kafka.consumer({
        groupId: options.groupId,
        sessionTimeout: options.sessionTimeoutMs,
        heartbeatInterval: options.heartbeatIntervalMs,
        rebalanceTimeout: options.rebalanceTimeoutMs,
        readUncommitted: !options.readCommitted,
        maxBytesPerPartition: options.maxBytesPerPartition,
        // Also how long kafkajs sleeps when every partition is paused: see fetchMaxWaitMs.
        maxWaitTimeInMs: fetchMaxWaitMs,
        allowAutoTopicCreation: false,
        retry,
      });
    } catch (error) {
      // kafkajs validates e.g. heartbeatInterval < sessionTimeout synchronously.
      throw new StreamError('CONFIG_INVALID', `consumer of group ${options.groupId}: ${toError(error).message}`, { cause: error });
    }
    const { GROUP_JOIN, CRASH, COMMIT_OFFSETS, REBALANCING } = this.#consumer.events;
    this.#consumer.on(REBALANCING, () => this.#onRebalancing());
    this.#consumer.on(GROUP_JOIN, (event) => this.#onGroupJoin(event.payload.memberAssignment));
    this.#consumer.on(CRASH, (event) => this.#onKafkaCrash(event.payload.error, event.payload.restart));
    this.#consumer.on(COMMIT_OFFSETS, () => {
      this.#commitsSeen += 1;
    });
  }

  /**
   * Restart policy (kafkajs asks only for errors it considers retriable: connection loss, coordinator
   * moves, retries exhausted). A restart leaves and rejoins the group, which the runtime handles like any
   * rebalance, so riding out a broker restart or leader election this way is cheaper than failing the
   * app. But not forever: after `maxConsumerRestarts` restarts without an assignment in between, the
   * outage is reported as a crash so that health checks and operators see it. Never while starting
   * (start() rejects instead) or stopping (a restart would rejoin the group we are leaving).
   */
  #shouldRestart(_error: Error): boolean {
    if (this.#state !== 'running') return false;
    this.#restartsSinceJoin += 1;
    return this.#restartsSinceJoin <= this.#maxRestarts;
  }

  async start(listener: ConsumerListener): Promise<void> {
    if (this.#state !== 'idle') throw new StreamError('STATE_INVALID', `consumer of group ${this.#options.groupId} was already started`);
    this.#state = 'starting';
    this.#listener = listener;
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { groupId, topics } = this.#options;
    try {
      await this.#consumer.connect();
      const missing = await this.#cluster.missingTopics(topics);
      if (missing.length > 0) throw topicMissing(missing, `consumer of group ${groupId}`);
      await this.#consumer.subscribe({ topics: [...topics], fromBeginning: this.#options.fromBeginning });
      // kafkajs' run() joins the group (GROUP_JOIN → onAssignment) before it returns; a failure to join
      // does not reject it but goes through the crash handler, hence #startError.
      await this.#consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => {
          const { batch } = payload;
          this.#onBatch(batch.topic, batch.partition, batch.highWatermark, batch.messages, batch.lastOffset(), (offset) => payload.resolveOffset(offset));
          return Promise.resolve();
        },
      });
      if (this.#startError) throw transportError(`consumer of group ${groupId} could not join the group`, this.#startError, { groupId });
      if (this.#state !== 'starting') throw new StreamError('ABORTED', `consumer of group ${groupId} was stopped while starting`);
      this.#state = 'running';
    } catch (error) {
      if (this.#state === 'starting') this.#state = 'crashed';
      await this.#consumer.disconnect().catch(() => undefined);
      throw error instanceof StreamError ? error : transportError(`consumer of group ${groupId} failed to start`, error, { groupId });
    }
  }

  #onBatch(
    topic: string,
    partition: number,
    highWatermark: string,
    messages: readonly KafkaMessage[],
    lastOffset: string,
    resolveOffset: (offset: string) => void,
  ): void {
    const listener = this.#listener;
    if (!listener || (this.#state !== 'running' && this.#state !== 'starting')) return;
    // A batch fetched before the partition was paused: leave it unresolved, it is fetched again on resume.
    if (this.#paused.has(tpKey(topic, partition))) return;
    let accepted: number;
    try {
      accepted = listener.onBatch({ topic, partition, highWatermark, messages: messages.map(toRawMessage) });
    } catch (error) {
      this.#fail(new StreamError('TRANSPORT_FAILED', `onBatch threw for ${topic}/${partition}: ${toError(error).message}`, { cause: error, context: { topic, partition } }));
      return;
    }
    accepted = Number.isFinite(accepted) ? Math.min(messages.length, Math.max(0, Math.floor(accepted))) : 0;
    if (accepted === 0) return;
    // All accepted: resolve the batch's last offset, which lies past trailing transaction markers and
    // aborted records that kafkajs filtered out of `messages`, so they are not fetched again. (kafkajs'
    // resolveOffset does this mapping itself for the last message's offset, runner.js processEachBatch;
    // we do not rely on it.)
    const last = messages[accepted - 1];
    if (accepted === messages.length) resolveOffset(lastOffset);
    else if (last) resolveOffset(last.offset);
  }

  /**
   * kafkajs emits REBALANCING (runner.js scheduleFetchManager) when a heartbeat or fetch was answered with
   * REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION / NOT_COORDINATOR, right before it rejoins; it does not
   * wait for listeners. A commit the runtime starts synchronously here is still written to the
   * coordinator's connection before the JoinGroup (which first needs a FindCoordinator round trip), and
   * the coordinator accepts commits of the current generation until every member has rejoined.
   * Rejoins kafkajs does without this event (kicked out with UNKNOWN_MEMBER_ID, changed topic metadata,
   * restarts) are seen only as the next assignment.
   */
  #onRebalancing(): void {
    if (this.#state !== 'running') return;
    try {
      this.#listener?.onRevoking();
    } catch (error) {
      this.#fail(new StreamError('TRANSPORT_FAILED', `onRevoking threw: ${toError(error).message}`, { cause: error }));
    }
  }

  #onGroupJoin(memberAssignment: Readonly<Record<string, number[]>>): void {
    const partitions: TopicPartition[] = Object.entries(memberAssignment)
      .flatMap(([topic, list]) => list.map((partition) => ({ topic, partition })))
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
    this.#generation += 1;
    this.#restartsSinceJoin = 0;
    this.#assigned.clear();
    for (const tp of partitions) this.#assigned.add(tpKey(tp.topic, tp.partition));
    const lost: TopicPartition[] = [];
    const kept: TopicPartition[] = [];
    for (const [key, tp] of this.#paused) {
      if (this.#assigned.has(key)) {
        kept.push(tp);
      } else {
        lost.push(tp);
        this.#paused.delete(key);
      }
    }
    // GROUP_JOIN is emitted synchronously before the first fetch of the generation, so this takes effect
    // before any record of it is fetched.
    if (lost.length > 0) this.#kafkaPauseState('resume', lost);
    if (kept.length > 0) this.#kafkaPauseState('pause', kept);
    const assignment: Assignment = { generation: this.#generation, partitions };
    try {
      this.#listener?.onAssignment(assignment);
    } catch (error) {
      // Throwing into kafkajs here would fail its join; report it as our crash instead.
      this.#fail(new StreamError('TRANSPORT_FAILED', `onAssignment threw: ${toError(error).message}`, { cause: error }));
    }
  }

  #onKafkaCrash(error: Error, restart: boolean): void {
    if (restart) return; // kafkajs rejoins by itself; the runtime sees the new assignment.
    if (this.#state === 'starting') {
      this.#startError = error;
      return;
    }
    if (this.#state !== 'running') return;
    this.#state = 'crashed';
    this.#listener?.onCrash(transportError(`consumer of group ${this.#options.groupId} crashed`, error, { groupId: this.#options.groupId }));
  }

  /** A listener threw: the consumer stops and the runtime hears a crash (or start() rejects). */
  #fail(error: StreamError): void {
    if (this.#state === 'starting') {
      this.#startError = error;
      return;
    }
    if (this.#state !== 'running') return;
    this.#state = 'crashed';
    void this.#consumer.disconnect().catch(() => undefined);
    this.#listener?.onCrash(error);
  }

  /** kafkajs throws when its consumer group is not there (before run, between crash and restart): our map is re-applied on the next join. */
  #kafkaPauseState(action: 'pause' | 'resume', partitions: readonly TopicPartition[]): void {
    try {
      this.#consumer[action](groupByTopic(partitions));
    } catch {
      // See above: nothing is lost, #paused is the source of truth.
    }
  }

  pause(partitions: readonly TopicPartition[]): void {
    if (partitions.length === 0) return;
    for (const tp of partitions) this.#paused.set(tpKey(tp.topic, tp.partition), { topic: tp.topic, partition: tp.partition });
    this.#kafkaPauseState('pause', partitions);
  }

  resume(partitions: readonly TopicPartition[]): void {
    if (partitions.length === 0) return;
    for (const tp of partitions) this.#paused.delete(tpKey(tp.topic, tp.partition));
    // kafkajs fetches these again from their resolved offset: right after the last accepted record.
    this.#kafkaPauseState('resume', partitions);
  }

  /**
   * kafkajs applies a seek before its next fetch from the partition's leader and drops what an earlier
   * fetch returned for it (consumerGroup.js fetch/seekOffsets); with autoCommit off it only moves the
   * position in memory (offsetManager.js seek). Batches of the partition still reaching #onBatch before
   * that are the runtime's to ignore: it keeps the partition paused until after the seek.
   */
  seek(position: PartitionOffset): void {
    if (!this.#assigned.has(tpKey(position.topic, position.partition))) return;
    try {
      this.#consumer.seek({ topic: position.topic, partition: position.partition, offset: position.offset });
    } catch (error) {
      // Only before run() or between a crash and kafkajs' restart: the restart refetches committed offsets.
      throw transportError(`seek ${position.topic}/${position.partition} to ${position.offset} failed`, error, { topic: position.topic, partition: position.partition });
    }
  }

  /**
   * Commits `offsets` of partitions this member owns; offsets of partitions it no longer owns are left
   * out (committing them could move the new owner's position back). Commits are serialised. Rejects when
   * kafkajs did not actually commit: its runner skips commits silently once it stopped (runner.js
   * commitOffsets returns if `!running`, also when the runner stops during a retry).
   */
  commit(offsets: readonly PartitionOffset[]): Promise<void> {
    const run = this.#commits.then(() => this.#commitNow(offsets));
    this.#commits = run.catch(() => undefined);
    return run;
  }

  async #commitNow(offsets: readonly PartitionOffset[]): Promise<void> {
    const groupId = this.#options.groupId;
    if (this.#state !== 'running') throw new StreamError('TRANSPORT_FAILED', `cannot commit: consumer of group ${groupId} is ${this.#state}`, { context: { groupId } });
    const owned = offsets.filter((o) => this.#assigned.has(tpKey(o.topic, o.partition)));
    if (owned.length === 0) return;
    const seen = this.#commitsSeen;
    try {
      await this.#consumer.commitOffsets(owned.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset })));
    } catch (error) {
      throw transportError(`commit for group ${groupId} failed`, error, { groupId });
    }
    if (this.#commitsSeen === seen) {
      throw new StreamError('TRANSPORT_FAILED', `commit for group ${groupId} was not performed: the consumer stopped (kafkajs drops commits of a stopped consumer)`, {
        context: { groupId },
      });
    }
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    await this.#starting?.catch(() => undefined);
    try {
      // Stops fetching, waits for the batch in progress (ours return at once), leaves the group (so the
      // others rebalance now, not after the session timeout) and closes the connections.
      await this.#consumer.disconnect();
    } catch (error) {
      throw transportError(`consumer of group ${this.#options.groupId} failed to stop`, error, { groupId: this.#options.groupId });
    } finally {
      this.#state = 'stopped';
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Producer
// ---------------------------------------------------------------------------------------------------------

/**
 * Idempotent producer, transactional with a transactional id.
 *
 * kafkajs details that matter here:
 * - Idempotence needs acks=-1 and, per the kafkajs docs, unlimited retries: with limited retries a failed
 *   request that did reach the broker has its sequence numbers reused by the next send, which the broker
 *   then drops as a duplicate (sendMessages.js rolls the sequence back on failure). So retries stay at
 *   the kafkajs default for idempotent producers (unlimited) and a send to a missing topic, which kafkajs
 *   would retry forever, is rejected up front with TOPIC_MISSING.
 * - `maxInFlightRequests`: kafkajs already serialises idempotent produce requests per broker with a
 *   mutex (eosManager acquireBrokerLock), so 5 costs no ordering; transactional producers use 1 as the
 *   kafkajs transactions docs require for exactly-once.
 * - A transaction whose commit or abort failed leaves kafkajs' transaction state machine in COMMITTING or
 *   ABORTING, which has no way back (transactionStateMachine.js): every later transaction() throws.
 *   We then replace the kafkajs producer; its InitProducerId makes the coordinator finish or abort the
 *   old transaction. A fenced producer is never replaced: that would fence the instance that fenced us.
 */
class KafkaProducer implements TransportProducer {
  readonly #cluster: Cluster;
  readonly #transactionalId: string | undefined;
  #producer: Producer;
  #connected = false;
  #fenced: StreamError | undefined;
  #needsReset = false;
  #open: KafkaTransaction | undefined;

  constructor(cluster: Cluster, options: ProducerOptions) {
    this.#cluster = cluster;
    this.#transactionalId = options.transactionalId;
    this.#producer = this.#create();
  }

  #create(): Producer {
    const transactional = this.#transactionalId !== undefined;
    return this.#cluster.kafka.producer({
      idempotent: true,
      maxInFlightRequests: transactional ? 1 : 5,
      allowAutoTopicCreation: false,
      // Explicit, or kafkajs warns on every producer; it is the Java client's murmur2 partitioner, so keys
      // land on the same partitions as with Java producers.
      createPartitioner: Partitioners.DefaultPartitioner,
      ...(transactional ? { transactionalId: this.#transactionalId } : {}),
    });
  }

  get #context(): ErrorContext {
    return this.#transactionalId === undefined ? {} : { transactionalId: this.#transactionalId };
  }

  /**
   * Connects. A transactional producer also registers its transactional id right away (kafkajs does it
   * lazily at the first transaction): that fences a zombie with the same id now, not at our first commit.
   */
  async connect(): Promise<void> {
    try {
      await this.#producer.connect();
      this.#connected = true;
      if (this.#transactionalId !== undefined) {
        // Begins and ends an empty transaction: InitProducerId, no EndTxn (nothing was added to it).
        const tx = await this.#producer.transaction();
        await tx.abort();
      }
    } catch (error) {
      throw this.#failure('connect failed', error);
    }
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.#transactionalId !== undefined) {
      throw new StreamError('STATE_INVALID', `producer ${this.#transactionalId} is transactional: send inside transaction()`, { context: this.#context });
    }
    if (messages.length === 0) return;
    await this.ensureTopics(messages);
    try {
      for (const request of produceRequests(messages)) await this.#producer.sendBatch({ topicMessages: topicMessages(request), acks: -1 });
    } catch (error) {
      throw this.#failure(`send to ${[...new Set(messages.map((m) => m.topic))].join(', ')} failed`, error);
    }
  }

  /** Rejects with TOPIC_MISSING when a message's topic does not exist (see the class notes). */
  async ensureTopics(messages: readonly OutgoingMessage[]): Promise<void> {
    let missing: string[];
    try {
      missing = await this.#cluster.missingTopics(messages.map((m) => m.topic));
    } catch (error) {
      throw transportError('topic check before send failed', error, this.#context);
    }
    if (missing.length > 0) throw topicMissing(missing, 'send');
  }

  async transaction(): Promise<TransportTransaction> {
    if (this.#transactionalId === undefined) throw new StreamError('STATE_INVALID', 'transaction() needs a producer created with a transactionalId');
    if (this.#fenced) throw this.#fencedAgain();
    if (this.#open?.active) throw new StreamError('STATE_INVALID', `producer ${this.#transactionalId}: end the open transaction before beginning another`, { context: this.#context });
    try {
      if (this.#needsReset) await this.#reset();
      const tx = await this.#producer.transaction();
      this.#open = new KafkaTransaction(this, tx);
      return this.#open;
    } catch (error) {
      throw this.#failure('begin transaction failed', error);
    }
  }

  /** Replaces the kafkajs producer; stays due until the new one connected (a broker may be down meanwhile). */
  async #reset(): Promise<void> {
    const old = this.#producer;
    this.#producer = this.#create();
    await old.disconnect().catch(() => undefined);
    if (this.#connected) await this.#producer.connect();
    this.#needsReset = false;
  }

  /** Maps a failure, remembering fencing (final) and broken transaction state (reset on next begin). */
  #failure(action: string, error: unknown, endedTransaction = false): StreamError {
    const mapped = transportError(this.#transactionalId === undefined ? action : `producer ${this.#transactionalId}: ${action}`, error, this.#context);
    if (mapped.context.fenced === true) this.#fenced ??= mapped;
    else if (endedTransaction) this.#needsReset = true;
    return mapped;
  }

  #fencedAgain(): StreamError {
    const first = this.#fenced;
    return new StreamError('TRANSPORT_FAILED', `producer ${this.#transactionalId ?? ''} was fenced and cannot be used again: create a new one`, {
      cause: first,
      context: { ...this.#context, fenced: true },
    });
  }

  /** Runs one kafkajs transaction call, mapping its failure. */
  async run(action: string, fn: () => Promise<void>, endsTransaction: boolean): Promise<void> {
    if (this.#fenced) throw this.#fencedAgain();
    try {
      await fn();
    } catch (error) {
      throw this.#failure(action, error, endsTransaction);
    }
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
    try {
      await this.#producer.disconnect();
    } catch (error) {
      throw transportError('producer disconnect failed', error, this.#context);
    }
  }
}

/** One kafkajs transaction. After a failed commit, `abort()` resolves without effect: the next transaction re-initialises the producer, which aborts it on the broker if it did not commit. */
class KafkaTransaction implements TransportTransaction {
  readonly #owner: KafkaProducer;
  readonly #tx: Transaction;
  #state: 'open' | 'ended' | 'failed' = 'open';

  constructor(owner: KafkaProducer, tx: Transaction) {
    this.#owner = owner;
    this.#tx = tx;
  }

  get active(): boolean {
    return this.#state === 'open';
  }

  #requireOpen(action: string): void {
    if (this.#state !== 'open') throw new StreamError('STATE_INVALID', `transaction ${action}: the transaction already ended`);
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#requireOpen('send');
    if (messages.length === 0) return;
    await this.#owner.ensureTopics(messages);
    for (const request of produceRequests(messages)) {
      await this.#owner.run('transactional send failed', () => this.#tx.sendBatch({ topicMessages: topicMessages(request), acks: -1 }).then(() => undefined), false);
    }
  }

  async sendOffsets(groupId: string, offsets: readonly PartitionOffset[]): Promise<void> {
    this.#requireOpen('sendOffsets');
    if (offsets.length === 0) return;
    const topics = groupByTopicOffsets(offsets);
    await this.#owner.run(`sendOffsets for group ${groupId} failed`, () => this.#tx.sendOffsets({ consumerGroupId: groupId, topics }), false);
  }

  async commit(): Promise<void> {
    this.#requireOpen('commit');
    try {
      await this.#owner.run('commit failed', () => this.#tx.commit(), true);
      this.#state = 'ended';
    } catch (error) {
      this.#state = 'failed';
      throw error;
    }
  }

  async abort(): Promise<void> {
    if (this.#state === 'failed') return;
    this.#requireOpen('abort');
    try {
      await this.#owner.run('abort failed', () => this.#tx.abort(), true);
      this.#state = 'ended';
    } catch (error) {
      this.#state = 'failed';
      throw error;
    }
  }
}

function groupByTopicOffsets(offsets: readonly PartitionOffset[]): { topic: string; partitions: { partition: number; offset: string }[] }[] {
  const byTopic = new Map<string, { partition: number; offset: string }[]>();
  for (const o of offsets) {
    const list = byTopic.get(o.topic) ?? [];
    list.push({ partition: o.partition, offset: o.offset });
    byTopic.set(o.topic, list);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

// ---------------------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------------------

/** Errors of a partition without an acting leader: transient after topic creation or a leader change. */
const TRANSIENT_PARTITION_ERRORS: ReadonlySet<string> = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION']);

/** Topics and offsets through the kafkajs admin client. */
class KafkaAdmin implements TransportAdmin {
  readonly #cluster: Cluster;
  readonly #admin: Admin;

  constructor(cluster: Cluster) {
    this.#cluster = cluster;
    this.#admin = cluster.kafka.admin();
  }

  async connect(): Promise<void> {
    try {
      await this.#admin.connect();
    } catch (error) {
      throw transportError('admin connect failed', error);
    }
  }

  /**
   * Creates the missing topics, each in its own request: kafkajs' createTopics returns `false` when any
   * topic already existed and then skips waiting for the leaders of the ones it did create, so one
   * request per topic tells exactly which were created. We wait for the leaders ourselves: kafkajs'
   * `waitForLeaders` only tolerates LEADER_NOT_AVAILABLE (admin/index.js retryOnLeaderNotAvailable), but
   * a KRaft broker answers UNKNOWN_TOPIC_OR_PARTITION until the new topic reached its metadata, and kafkajs
   * then rejects createTopics although the topic was created; and a leader in the metadata is not yet
   * a leader that serves the partition (see #waitForLeaders).
   */
  async createTopics(topics: readonly TopicSpec[]): Promise<string[]> {
    try {
      const existing = new Set(await this.#admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t.name));
      const created = await Promise.all(
        missing.map(async (t) => {
          const made = await this.#admin.createTopics({
            waitForLeaders: false,
            topics: [
              {
                topic: t.name,
                numPartitions: t.partitions,
                ...(t.config ? { configEntries: Object.entries(t.config).map(([name, value]) => ({ name, value })) } : {}),
              },
            ],
          });
          if (!made) return undefined; // created by someone else meanwhile
          await this.#waitForLeaders(t.name);
          return t.name;
        }),
      );
      return created.filter((name): name is string => name !== undefined);
    } catch (error) {
      throw transportError(`create topics ${topics.map((t) => t.name).join(', ')} failed`, error);
    }
  }

  /**
   * Waits until a new topic can be used: every partition has a leader in the metadata and that leader
   * answers for it. On KRaft the metadata can name a leader a moment before the broker acts as one
   * (ListOffsets then fails with NOT_LEADER_FOR_PARTITION), so we check both.
   */
  async #waitForLeaders(topic: string): Promise<void> {
    await this.#whileTransient(async () => {
      const { topics } = await this.#admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics.find((t) => t.name === topic)?.partitions ?? [];
      if (partitions.length === 0 || partitions.some((p) => p.leader < 0)) throw Object.assign(new Error(`topic ${topic} has no leaders yet`), { type: 'LEADER_NOT_AVAILABLE' });
      await this.#admin.fetchTopicOffsets(topic);
    });
  }

  /**
   * Runs `fn` again while it fails with a partition that has no (acting) leader yet: right after topic
   * creation or a leader change. kafkajs' admin retries some of these itself but bails on others, e.g.
   * fetchTopicOffsets on NOT_LEADER_FOR_PARTITION (admin/index.js fetchTopicOffsets).
   */
  async #whileTransient<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await fn();
      } catch (error) {
        const transient = protocolTypes(error).some((t) => TRANSIENT_PARTITION_ERRORS.has(t));
        if (!transient || Date.now() > deadline) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async listTopics(): Promise<string[]> {
    try {
      return await this.#admin.listTopics();
    } catch (error) {
      throw transportError('list topics failed', error);
    }
  }

  async #requireTopic(topic: string, action: string): Promise<void> {
    // kafkajs retries metadata for a missing topic before failing; ask for the list instead.
    const missing = await this.#cluster.missingTopics([topic], this.#admin);
    if (missing.length > 0) throw topicMissing(missing, action);
  }

  async endOffsets(topic: string): Promise<PartitionOffset[]> {
    try {
      await this.#requireTopic(topic, 'end offsets');
      const offsets = await this.#whileTransient(() => this.#admin.fetchTopicOffsets(topic), 5000);
      return offsets.map((o) => ({ topic, partition: o.partition, offset: o.high })).sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw transportError(`end offsets of ${topic} failed`, error, { topic });
    }
  }

  async committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    try {
      await this.#requireTopic(topic, 'committed offsets');
      const result = await this.#admin.fetchOffsets({ groupId, topics: [topic] });
      return result
        .flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })))
        .filter((p) => p.offset !== '-1' && p.offset !== '')
        .sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw transportError(`committed offsets of group ${groupId} on ${topic} failed`, error, { groupId, topic });
    }
  }

  async disconnect(): Promise<void> {
    try {
      await this.#admin.disconnect();
    } catch (error) {
      throw transportError('admin disconnect failed', error);
    }
  }
}
