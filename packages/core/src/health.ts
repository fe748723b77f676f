import type { OpenCircuit } from './runtime/circuit.js';
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
  /** Milliseconds since the last successful commit (or since start); undefined without a consumer. */
  readonly commitAgeMs: number | undefined;
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
}

/** The consumer part of {@link AppHealth} when there is no consumer (yet). */
export const NO_CONSUMER: ConsumerHealth = { joined: false, assignment: [], agents: [], buffered: 0, lag: [], commitAgeMs: undefined };
