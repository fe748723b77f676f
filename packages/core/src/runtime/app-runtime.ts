import { settlesWithin } from '../abort.js';
import type { AppOptions } from '../app.js';
import { StreamError, toError } from '../errors.js';
import type { AgentHealth, ConsumerHealth } from '../health.js';
import type { Logger } from '../logger.js';
import { createStreamAgent } from '../stream.js';
import { DEFAULT_HEADER_LIMITS } from '../topic.js';
import type { AgentPlan, TopologyPlan } from '../topology.js';
import type { OutgoingMessage, Transport } from '../transport/transport.js';
import { AgentRunner, type AgentHost } from './agent-runner.js';
import type { DependencyCheck } from './circuit.js';
import { ConsumerRuntime } from './consumer-runtime.js';
import type { TablesByTopic } from './restore.js';
import { PartitionOwners, type PartitionOwner } from './table-owners.js';
import type { AnyTable, PartitionStore } from '../table.js';
import type { Instrumentation } from './instrumentation.js';

/** How long the final commit and leaving the group may take once in-flight records are done. */
const LEAVE_TIMEOUT_MS = 10_000;
/** After the shutdown deadline aborted the in-flight records, how long they get to wind down. */
const ABORT_GRACE_MS = 2000;

/** The app's consumer settings; defaults are resolved here. */
type ConsumerSettings = Pick<
  AppOptions,
  | 'groupId'
  | 'startFrom'
  | 'commitIntervalMs'
  | 'buffer'
  | 'sessionTimeoutMs'
  | 'heartbeatIntervalMs'
  | 'rebalanceTimeoutMs'
  | 'maxBytesPerPartition'
  | 'headerLimits'
>;

/** What {@link AppRuntime} needs from its app. */
export interface AppRuntimeOptions {
  readonly appId: string;
  readonly transport: Transport;
  readonly plan: TopologyPlan;
  readonly settings: ConsumerSettings;
  /** The app's logger: runners and the consumer log through children of it. */
  readonly log: Logger;
  readonly instrumentation: Instrumentation;
  /** Aborted when the app begins to stop. */
  readonly stopping: AbortSignal;
  /** The app's dependency checks (see `app.dependency`). */
  readonly checks: ReadonlyMap<string, DependencyCheck>;
  /** The tables of each consumed topic, with their changelog topics. */
  readonly tables: TablesByTopic;
  /** The address this instance advertises to its group (the member's memberInfo), for table queries. */
  readonly advertisedUrl?: string;
  /** The memberInfo published with it (see `memberInfoOf`). */
  readonly memberInfo?: string;
  /** The app's producer, shared with `app.send`. */
  produce(messages: readonly OutgoingMessage[]): Promise<void>;
}

/**
 * The default fetch size per partition. Every fetched record stays in memory until the completed prefix
 * passes it, so a fetch is also what a partition holds beyond its buffer: at 1 MiB (about 4,000 small
 * records a partition) the records lived long enough to be promoted to the old generation, and the default
 * agent peaked at about 700 MB of resident memory and spent a quarter of its CPU in the garbage collector.
 * At 128 KiB with {@link MIN_BUFFER_RECORDS} it measured about 410 MB, 24–27 instead of 31 ms of CPU per
 * 1,000 records and the same throughput (`pnpm bench --scenario defaults`, see the core README).
 */
export const DEFAULT_MAX_BYTES_PER_PARTITION = 128 * 1024;

/**
 * The default `commitIntervalMs` of an app without exactly-once agents. An at-least-once output is visible once
 * sent; the commit only bounds what a restart processes again.
 */
export const DEFAULT_COMMIT_INTERVAL_MS = 1000;

/**
 * The default `commitIntervalMs` of an app with exactly-once agents (Kafka Streams' default under exactly-once
 * too): their outputs become visible to read-committed consumers only when the transaction commits, so the
 * interval is latency every record waits. At 1 s the search-enricher bench (5,000 queries) ran 1,840 rec/s, at
 * 100 ms 2,280 (+24 %), and the 200,000-record exactly-once passthrough kept its throughput and CPU per record
 * (`pnpm bench --scenario service-search-enricher,exactly-once`, 2026-12-08).
 */
export const EXACTLY_ONCE_COMMIT_INTERVAL_MS = 100;

/** The default `commitIntervalMs`: {@link EXACTLY_ONCE_COMMIT_INTERVAL_MS} when an agent is exactly-once. */
export function defaultCommitIntervalMs(exactlyOnceTopics: ReadonlySet<string>): number {
  return exactlyOnceTopics.size > 0 ? EXACTLY_ONCE_COMMIT_INTERVAL_MS : DEFAULT_COMMIT_INTERVAL_MS;
}

/** The least a partition may hold by default (see {@link defaultBufferRecords}). */
export const MIN_BUFFER_RECORDS = 256;

/**
 * The default `buffer.maxRecords`: what the most demanding agent needs to run at full speed (its
 * concurrency, a stream's prefetch, two batches of a batch agent), and at least {@link MIN_BUFFER_RECORDS}.
 * A larger buffer only keeps records waiting longer: memory, not speed.
 */
export function defaultBufferRecords(agents: readonly AgentPlan[]): number {
  let records = MIN_BUFFER_RECORDS;
  for (const agent of agents) if (Number.isFinite(agent.bufferRecords)) records = Math.max(records, agent.bufferRecords);
  return records;
}

/**
 * The consuming side of a started app: one agent runner per agent and per retry stage, built from the
 * topology plan, and the consumer runtime that feeds them. It is the runners' {@link AgentHost}, relaying
 * what they produce to the app's producer and what they dequeue and finish to the consumer runtime.
 */
export class AppRuntime {
  readonly #log: Logger;
  readonly #runners: readonly AgentRunner[];
  readonly #consumer: ConsumerRuntime;
  readonly #deadline = new AbortController();
  readonly #owners: PartitionOwners;

  constructor(options: AppRuntimeOptions) {
    const { appId, plan, settings, log } = options;
    this.#log = log;
    const host: AgentHost = {
      appId,
      instrumentation: options.instrumentation,
      stopping: options.stopping,
      deadline: this.#deadline.signal,
      produce: (messages) => options.produce(messages),
      dequeued: (delivery) => this.#consumer.dequeued(delivery),
      finished: (delivery, outputs) => this.#consumer.finished(delivery, outputs),
      tableWriteFailed: (partition, error) => this.#consumer.tableWriteFailed(partition, error),
    };
    this.#runners = plan.agents.flatMap((agent) => {
      const { entry, name } = agent;
      const runnerLog = log.child({ agent: name, topic: entry.topic.name });
      const handler = entry.stream ? createStreamAgent(entry.stream, options.stopping, runnerLog) : entry.handler;
      const common = {
        name,
        topic: entry.topic,
        handler,
        concurrency: agent.concurrency,
        retry: agent.retry,
        deadLetterTopic: agent.deadLetterTopic,
        exactlyOnce: agent.exactlyOnce,
        retryStages: agent.retryStages,
        classify: entry.options.classify,
        tables: new Set(entry.options.tables ?? []),
        checks: options.checks,
        headerLimits: {
          maxHeaders: settings.headerLimits?.maxHeaders ?? DEFAULT_HEADER_LIMITS.maxHeaders,
          maxBytes: settings.headerLimits?.maxBytes ?? DEFAULT_HEADER_LIMITS.maxBytes,
        },
      };
      const main = new AgentRunner({ ...common, ordering: agent.ordering, stage: 0, log: runnerLog }, host);
      // A retry stage keeps its partitions in order: the head waits until due, and what follows is due later.
      const stages = agent.retryStages.map(
        (stage, i) => new AgentRunner({ ...common, ordering: 'partition', stage: i + 1, log: log.child({ agent: name, topic: stage.topic }) }, host),
      );
      return [main, ...stages];
    });
    const groupId = settings.groupId ?? appId;
    this.#owners = new PartitionOwners(options.transport, groupId, options.advertisedUrl, log.child({ component: 'table-owners' }));
    this.#consumer = new ConsumerRuntime({
      appId,
      membershipChanged: () => this.#owners.invalidate(),
      transport: options.transport,
      runners: this.#runners,
      buffer: { maxRecords: settings.buffer?.maxRecords ?? defaultBufferRecords(plan.agents), maxBytes: settings.buffer?.maxBytes ?? 16 * 1024 * 1024 },
      commitIntervalMs: settings.commitIntervalMs ?? defaultCommitIntervalMs(plan.exactlyOnceTopics),
      log: log.child({ component: 'consumer' }),
      instrumentation: options.instrumentation,
      exactlyOnceTopics: plan.exactlyOnceTopics,
      tables: options.tables,
      consumer: {
        groupId,
        ...(options.memberInfo === undefined ? {} : { memberInfo: options.memberInfo }),
        topics: [...plan.consumedTopics],
        fromBeginning: (settings.startFrom ?? 'earliest') === 'earliest',
        sessionTimeoutMs: settings.sessionTimeoutMs ?? 30_000,
        heartbeatIntervalMs: settings.heartbeatIntervalMs ?? 3_000,
        rebalanceTimeoutMs: settings.rebalanceTimeoutMs ?? 60_000,
        readCommitted: true,
        maxBytesPerPartition: settings.maxBytesPerPartition ?? DEFAULT_MAX_BYTES_PER_PARTITION,
      },
    });
  }

  /** True once the group gave this member its first assignment. */
  get joined(): boolean {
    return this.#consumer.joined;
  }

  /** Joins the group and starts fetching; `onCrash` is called if the consumer stops for good later. */
  start(onCrash: (error: Error) => void): Promise<void> {
    return this.#consumer.start(onCrash);
  }

  /** Partitions whose tables are being restored. */
  get restoring(): number {
    return this.#consumer.restoring;
  }

  /**
   * Where partition `partition` of `table` lives: here (restored, or still restoring) when this member holds
   * it for one of `topics` (the table's co-partitioned source topics), else the owner the group names.
   */
  async locate(table: AnyTable, topics: readonly string[], partition: number): Promise<TableLocation> {
    for (const topic of topics) {
      const state = this.#consumer.partitionState(topic, partition);
      if (!state) continue;
      const store = state.tables.get(table);
      if (state.restoring || state.claiming || !store) return { kind: 'restoring' };
      return { kind: 'local', store };
    }
    return this.#owners.owner(topics, partition);
  }

  /** Commits the completed offsets now rather than at the next interval. */
  commit(): Promise<void> {
    return this.#consumer.commit();
  }

  /**
   * Stops consuming: fetching stops, in-flight records get `shutdownTimeoutMs` to finish (then their
   * `ctx.signal` aborts), completed offsets are committed and the group is left. Resolves true when
   * in-flight records had to be aborted or the final commit and leave did not finish in time.
   */
  async stop(shutdownTimeoutMs: number): Promise<boolean> {
    let timedOut = false;
    this.#consumer.beginStop();
    const idle = Promise.all(this.#runners.map((r) => r.whenIdle()));
    if (!(await settlesWithin(idle, shutdownTimeoutMs))) {
      timedOut = true;
      this.#log.warn({ timeoutMs: shutdownTimeoutMs }, 'shutdown deadline passed: aborting in-flight records');
      this.#deadline.abort(new StreamError('SHUTDOWN_TIMEOUT', `shutdown deadline of ${shutdownTimeoutMs} ms passed`));
      await settlesWithin(idle, ABORT_GRACE_MS);
    }
    // The final commit and leaving the group talk to the broker: bounded, so that a broker that does not
    // answer cannot keep a stopping process alive (what was not committed is consumed again).
    let leaveTimer: NodeJS.Timeout | undefined;
    const leaveDeadline = new Promise<'deadline'>((resolve) => (leaveTimer = setTimeout(() => resolve('deadline'), LEAVE_TIMEOUT_MS)));
    try {
      if ((await Promise.race([this.#consumer.finishStop(), leaveDeadline])) === 'deadline') {
        timedOut = true;
        this.#log.error({ timeoutMs: LEAVE_TIMEOUT_MS }, 'final commit and leaving the group did not finish in time: stopping without them');
      }
    } catch (error) {
      this.#log.error({ err: toError(error) }, 'error while leaving the group');
    } finally {
      clearTimeout(leaveTimer);
      await this.#owners.close();
    }
    return timedOut;
  }

  /** A snapshot of the consumer and every runner. */
  health(): ConsumerHealth {
    const consumer = this.#consumer;
    return {
      joined: consumer.joined,
      assignment: consumer.assignment,
      agents: this.#runners.map((r): AgentHealth => ({
        name: r.name,
        source: r.source,
        inFlight: r.inFlight,
        oldestInFlightMs: r.oldestInFlightMs(),
        deadLetterTopic: r.deadLetterTopic,
        exactlyOnce: r.exactlyOnce,
        dependenciesDown: r.openCircuits(),
      })),
      buffered: consumer.buffered(),
      lag: consumer.lag(),
      commitAgeMs: consumer.commitAgeMs,
      partitions: consumer.partitions(),
    };
  }
}

/** Where a partition of a table lives, for a table query: here, or who owns it. */
export type TableLocation =
  | { readonly kind: 'local'; readonly store: PartitionStore<unknown, unknown> }
  /** Held here, its tables not restored yet (or, exactly-once, not claimed yet). */
  | { readonly kind: 'restoring' }
  | PartitionOwner;
