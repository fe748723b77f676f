/** The scenario contract: add a scenario by implementing {@link Scenario} and listing it in ./index.ts. */
import type { DatasetSpec } from '../data.js';
import type { PerfTestResult } from '../java.js';
import type { ConsumerResult } from '../protocol.js';

/** One side's measurement in one round. */
export interface RoundMeasurement extends ConsumerResult {
  readonly round: number;
  /** Output read back afterwards (scenarios that produce): every input must be there. */
  readonly output?: { readonly distinct: number; readonly duplicates: number; readonly missing: number };
  /** 1-minute load average when the run started: the machine is shared, so this says how noisy it was. */
  readonly loadAvg1: number;
  /** Hash of @stream/core's compiled code when the run started (see core-build.ts). */
  readonly coreBuild: string;
  /** Correctness violations a scenario's own check found after the run (e.g. an email sent twice). */
  readonly checks?: readonly string[];
}

/** The medians over a side's rounds. */
export interface SideSummary {
  readonly label: string;
  readonly recordsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly peakRssMb: number;
  readonly cpuMsPer1kRecords: number;
  readonly rounds: readonly RoundMeasurement[];
}

/** The broker's own consumer throughput on the same data (kafka-consumer-perf-test). */
export interface Ceiling {
  readonly tool: string;
  /** Median fetch-phase messages/s (group join excluded, like our own timing). */
  readonly recordsPerSec: number;
  /** Median messages/s including the group join, as the tool's nMsg.sec reports it. */
  readonly recordsPerSecWithJoin: number;
  readonly mbPerSec: number;
  readonly runs: readonly PerfTestResult[];
  /** ours / ceiling (records per second). */
  readonly oursOverCeiling: number;
}

/** Ours on another Kafka client, run in the same rounds as the scenario's ours and baseline, on the same data. */
export interface TransportSummary {
  readonly transport: string;
  readonly ours: SideSummary;
  /** It / the scenario's baseline, of the scenario's `ratioMetric`. */
  readonly ratio: number;
  /** It / ours on kafkajs, of the same metric. */
  readonly overKafkajs: number;
  /** Its records/s over the broker's own consumer's, when the scenario measured that ceiling. */
  readonly overCeiling?: number;
}

/** What a scenario reports (one entry of latest.json's `scenarios`). */
export interface ScenarioResult {
  readonly scenario: string;
  readonly title: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly ours: SideSummary;
  readonly baseline: SideSummary;
  /** ours / baseline of `ratioMetric`. */
  readonly ratio: number;
  readonly ratioMetric: 'recordsPerSec' | 'peakRssMb';
  /** The target in words, e.g. `≥ 0.9× baseline records/s`. */
  readonly target: string;
  readonly targetMet: boolean;
  readonly ceiling?: Ceiling;
  /** Ours on the other Kafka clients (`--transports`), for the core scenarios. */
  readonly transports?: readonly TransportSummary[];
  /** Scenario-specific facts: orderIntact, RSS at progress, flatness… */
  readonly extra: Readonly<Record<string, unknown>>;
  /** Correctness violations (lost records, broken order): any of them fails the runner. */
  readonly violations: readonly string[];
  readonly notes: readonly string[];
  /** Rounds run (each: one run of ours and one of the baseline). */
  readonly rounds: number;
  readonly durationSec: number;
}

/** What the runner gives a scenario. */
export interface ScenarioContext {
  readonly quick: boolean;
  readonly rounds: number;
  readonly brokers: readonly string[];
  /** Directory for child logs of this invocation. */
  readonly logDir: string;
  /** Set with --profile: consumer children run with --cpu-prof and write their profiles here. */
  readonly profileDir: string | undefined;
  /** Kafka clients ours runs on besides kafkajs (`--transports`), in the core scenarios. */
  readonly otherTransports: readonly 'platformatic'[];
  log(message: string): void;
  /** Writes the data set to a topic; the offsets of each partition follow `seq`. */
  produce(topic: string, spec: DatasetSpec): Promise<void>;
  /** The ceiling for a data set, measured once per invocation and shared by the scenarios using that data. */
  ceiling(spec: DatasetSpec): Promise<Omit<Ceiling, 'oursOverCeiling'>>;
}

/** A benchmark scenario. */
export interface Scenario {
  readonly name: string;
  readonly title: string;
  /** One line for --help. */
  readonly description: string;
  /** Rounds when --rounds is not given (default 1 with --quick, 3 otherwise). */
  readonly defaultRounds?: { readonly quick: number; readonly full: number };
  run(context: ScenarioContext): Promise<Omit<ScenarioResult, 'durationSec' | 'rounds'>>;
}
