/** What the runner and its consumer child processes tell each other (config via env, result via IPC). */

/** The environment variable that carries a child's {@link ConsumerConfig} as JSON. */
export const CONFIG_ENV = 'STREAM_BENCH_CONFIG';

/** What a consumer child is asked to do. */
export interface ConsumerConfig {
  readonly scenario: string;
  readonly side: string;
  readonly brokers: readonly string[];
  readonly input: string;
  /** Output topic, for the scenarios that produce. */
  readonly output?: string;
  readonly groupId: string;
  /** Records in the input topic: the run is complete once every one of them was handled (see each consumer). */
  readonly expected: number;
  /** Variant of the consumer (e.g. `agent`, `stream`, `eos` for ours-passthrough). */
  readonly mode: string;
  /** Records in flight (ours: agent `concurrency`, or stream `prefetch`). */
  readonly concurrency: number;
  /** Simulated I/O per record, in ms (0: none). */
  readonly ioDelayMs: number;
  /** Check that each key's `seq` values are handled in increasing order. */
  readonly trackOrder: boolean;
  /** The child gives up (and reports an error) when the run is not complete by then. */
  readonly deadlineMs: number;
  /** `take(size, { within })` of the stream variant. */
  readonly take: { readonly size: number; readonly withinMs: number };
  /** kafkajs `partitionsConsumedConcurrently` of the baselines. */
  readonly partitionsConsumedConcurrently: number;
  /** Where the per-service scenarios' servers and data are (Redis key prefix, email API URL, bucket, index…). */
  readonly service?: Readonly<Record<string, string | number>>;
  /** Ours: the Kafka client of `createApp({ transport })` (default kafkajs). Baselines always use kafkajs. */
  readonly transport?: 'kafkajs' | 'platformatic';
}

/** What one consumer run measured. */
export interface ConsumerResult {
  /** Records handled, redeliveries included. */
  readonly handled: number;
  readonly distinct: number;
  readonly duplicates: number;
  /** Process start to first record handed to user code (connect, join, first fetch). */
  readonly setupMs: number;
  /** First record handed to user code to completion. */
  readonly durationMs: number;
  readonly recordsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxLatencyMs: number;
  /** Peak of `process.memoryUsage.rss()` sampled every 50 ms from process start to completion. */
  readonly peakRssMb: number;
  /** The kernel's high-water mark (`process.resourceUsage().maxRSS`), as a cross-check of the sampling. */
  readonly maxRssMb: number;
  /** RSS when 25, 50, 75 and 100 % of the records were handled. */
  readonly rssAtProgressMb: readonly number[];
  /** `process.memoryUsage()` (MB) at the same marks: where the RSS is (V8 heap or Buffers). */
  readonly memoryAtProgressMb: readonly { readonly heapTotal: number; readonly heapUsed: number; readonly external: number; readonly arrayBuffers: number }[];
  readonly rssSamples: number;
  /** Records handled before a record of the same key with a lower `seq` (null when not tracked). */
  readonly orderViolations: number | null;
  /** CPU time of the consumer process between first record and completion. */
  readonly cpuMs: number;
  readonly cpuMsPer1kRecords: number;
  /** Consumer-specific counters, e.g. `batchesFetched` (fetched batches handed to the consumer). */
  readonly diagnostics: Readonly<Record<string, number>>;
  /** How long the graceful stop took after completion (not part of the measurement). */
  readonly stopMs: number;
}

export type ChildMessage = { readonly type: 'result'; readonly result: ConsumerResult } | { readonly type: 'error'; readonly message: string };
