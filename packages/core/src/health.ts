import type { GlobalTableHealth } from './global-table.js';
import type { OpenCircuit } from './runtime/circuit.js';
import type { TimerHealth } from './timers.js';
import type { TopicPartition } from './transport/transport.js';

/** Where an app is in its life. */
export type AppState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/**
 * One runner of an agent: the agent's main runner on its topic, or one of its delayed-retry stages
 * (same `name`, `source` the retry topic).
 */
export interface AgentHealth {
  readonly name: string;
  /** The topic this runner consumes. */
  readonly source: string;
  /** Records being processed, retry waits included. */
  readonly inFlight: number;
  /** Age of the oldest record in flight, 0 when none: what `/healthz` calls stuck. */
  readonly oldestInFlightMs: number;
  /** Null when the agent has `deadLetter: false`. */
  readonly deadLetterTopic: string | null;
  readonly exactlyOnce: boolean;
  /** Dependencies the runner waits for (it starts no new record meanwhile), with when each went down. */
  readonly dependenciesDown: readonly OpenCircuit[];
}

/** Log end minus committed offset of one assigned partition. */
export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  readonly lag: number;
}

/** The record running longest on a partition: started by `agent` and not finished `ageMs` later. */
export interface UnfinishedRecord {
  readonly agent: string;
  readonly offset: number;
  /** Since its first attempt started, retries and their backoff included (a wait until due on a retry stage is not). */
  readonly ageMs: number;
}

/** One assigned partition: how far behind it is, what it holds in memory, and whether something is stuck on it. */
export interface PartitionHealth {
  readonly topic: string;
  readonly partition: number;
  /** High watermark (of the partition's last fetch; read every second while it is paused) minus the committed offset. */
  readonly lag: number;
  readonly highWatermark: number;
  /** The committed offset (before this assignment's first commit: where it started); undefined before any fetch. */
  readonly committedOffset: number | undefined;
  /** Records held: queued, running, finished behind an unfinished one, and exactly-once outputs awaiting their transaction. */
  readonly heldRecords: number;
  /** Their bytes (keys, values, headers), counted against `buffer.maxBytes`. */
  readonly heldBytes: number;
  /** Fetching stopped: the partition holds `buffer.maxRecords` or `buffer.maxBytes` (or the app is stopping). */
  readonly paused: boolean;
  /** Exactly-once: being claimed (fencing the previous owner), not processed yet. */
  readonly claiming: boolean;
  /** Its tables are being restored from their changelogs (paused meanwhile; the app is not ready). */
  readonly restoring: boolean;
  /** Milliseconds since its last commit while it has uncommitted records; 0 when it is up to date. */
  readonly commitAgeMs: number;
  /** Its oldest running record, if any. */
  readonly oldestUnfinished: UnfinishedRecord | undefined;
}

/** A record unfinished for longer than the app's `stuckAfterMs`: what makes `/healthz` fail. */
export interface StuckRecord extends UnfinishedRecord {
  readonly topic: string;
  readonly partition: number;
}

/** What the app's consumer reports; the idle values before start and for an app without agents. */
export interface ConsumerHealth {
  /** True once the group gave this member its first assignment. */
  readonly joined: boolean;
  /** The current generation's partitions. */
  readonly assignment: readonly TopicPartition[];
  /** Every runner of every agent, in the order the agents were added (each agent's retry stages after it). */
  readonly agents: readonly AgentHealth[];
  /** Deliveries accepted and not yet started, over all partitions: bounded by the buffer limits. */
  readonly buffered: number;
  readonly lag: readonly PartitionLag[];
  /**
   * The largest commit age over the assigned partitions (see {@link PartitionHealth.commitAgeMs}): a
   * partition that commits does not hide one that cannot. Undefined without a consumer.
   */
  readonly commitAgeMs: number | undefined;
  /** Every assigned partition. */
  readonly partitions: readonly PartitionHealth[];
}

/**
 * A snapshot of an app for ops endpoints, metrics and tests, read with `app.health()`. Each call takes a
 * new snapshot; nothing in it changes afterwards.
 */
export interface AppHealth extends ConsumerHealth {
  readonly state: AppState;
  /** Running and joined to the group (or without agents): what `/readyz` reports. */
  readonly ready: boolean;
  /** Why the app failed, when `state` is `'failed'`. */
  readonly failure: Error | undefined;
  /** The app's bound (`stuckAfterMs`): a record unfinished longer is stuck. */
  readonly stuckAfterMs: number;
  /** The partitions whose oldest unfinished record is older than `stuckAfterMs`: `/healthz` fails while any is. */
  readonly stuck: readonly StuckRecord[];
  /** The app's timers and crontabs (see `app.timer`, `app.crontab`). */
  readonly timers: readonly TimerHealth[];
  /** The app's global tables: loaded or not, lag behind their topics, records skipped (see `app.globalTable`). */
  readonly globalTables: readonly GlobalTableHealth[];
}

/** The consumer part of {@link AppHealth} when there is no consumer (yet). */
export const NO_CONSUMER: ConsumerHealth = { joined: false, assignment: [], agents: [], buffered: 0, lag: [], commitAgeMs: undefined, partitions: [] };

/** Default of the app's `stuckAfterMs`: well above a retry policy's backoff (30 s at most per attempt by default). */
export const DEFAULT_STUCK_AFTER_MS = 5 * 60_000;

/** The partitions of `partitions` whose oldest unfinished record is older than `stuckAfterMs`. */
export function stuckRecords(partitions: readonly PartitionHealth[], stuckAfterMs: number): StuckRecord[] {
  return partitions.flatMap((p) =>
    p.oldestUnfinished && p.oldestUnfinished.ageMs > stuckAfterMs ? [{ topic: p.topic, partition: p.partition, ...p.oldestUnfinished }] : [],
  );
}
