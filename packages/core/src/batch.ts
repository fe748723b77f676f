import type { AgentContext, AgentHandler } from './agent.js';
import { StreamError, toError } from './errors.js';
import { heldResult, holdRecord, type Held } from './runtime/handler-context.js';

/** How a batch agent groups records: per partition, up to `maxRecords`, waiting at most `maxWaitMs` for them. */
export interface BatchOptions {
  /** Largest batch handed to the handler (1–100,000). */
  readonly maxRecords: number;
  /**
   * How long the first record of a batch waits for more (0–60,000 ms). A batch is also cut when it is
   * full, and while the partition's previous batch runs the next one keeps filling.
   */
  readonly maxWaitMs: number;
}

/** One record of a batch: its value and its own context (`send`, `signal`, offset, key, headers, attempt). */
export interface BatchRecord<K, V> {
  readonly value: V;
  readonly ctx: AgentContext<K>;
}

/** Where a batch came from. */
export interface BatchContext {
  readonly topic: string;
  readonly partition: number;
  /** Fires when the partition is revoked or the shutdown deadline passes (the first record's signal). */
  readonly signal: AbortSignal;
}

/**
 * Per-record outcomes of a batch: one entry per record, in order; `undefined` (or a missing entry) for a
 * record that was processed, an error for one that failed. Only the failed records are retried and, after
 * their attempts, dead-lettered, each by the classification of its own error.
 */
export type BatchOutcomes = readonly (Error | undefined)[];

/**
 * Processes one partition's batch, in offset order. Resolving with nothing marks every record processed;
 * resolving with {@link BatchOutcomes} fails only the records that have an error; throwing fails all of them.
 * Sends go through each record's `ctx.send`, so that they commit (or join the transaction) with their record.
 */
export type BatchHandler<K, V> = (records: readonly BatchRecord<K, V>[], batch: BatchContext) => Promise<BatchOutcomes | void>;

/** The limits {@link BatchOptions} must stay within. */
const LIMITS = { maxRecords: [1, 100_000], maxWaitMs: [0, 60_000] } as const;

/** Checks batch options, naming the agent in the error. */
export function validateBatchOptions(agent: string, options: BatchOptions): void {
  for (const [field, [min, max]] of Object.entries(LIMITS) as [keyof BatchOptions, readonly [number, number]][]) {
    const value = options[field];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new StreamError('CONFIG_INVALID', `agent ${agent}: batch.${field} must be a whole number from ${min} to ${max}, got ${String(value)}`);
    }
  }
}

interface Entry {
  readonly record: BatchRecord<unknown, unknown>;
  readonly outcome: Held;
}

/** One partition's batches: the open one filling, the closed ones waiting, at most one running. */
class PartitionBatches {
  #open: Entry[] = [];
  readonly #closed: Entry[][] = [];
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  readonly topic: string;
  readonly partition: number;
  readonly #run: (batch: Entry[], context: BatchContext) => Promise<BatchOutcomes | void>;
  readonly #options: BatchOptions;
  readonly #idle: () => void;

  constructor(
    topic: string,
    partition: number,
    run: (batch: Entry[], context: BatchContext) => Promise<BatchOutcomes | void>,
    options: BatchOptions,
    idle: () => void,
  ) {
    this.topic = topic;
    this.partition = partition;
    this.#run = run;
    this.#options = options;
    this.#idle = idle;
  }

  get empty(): boolean {
    return !this.#running && this.#open.length === 0 && this.#closed.length === 0;
  }

  add(entry: Entry): void {
    this.#open.push(entry);
    if (this.#open.length >= this.#options.maxRecords) this.#close();
    else this.#timer ??= setTimeout(() => this.#close(), this.#options.maxWaitMs);
  }

  #close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#open.length > 0) this.#closed.push(this.#open);
    this.#open = [];
    this.#drain();
  }

  #drain(): void {
    if (this.#running) return;
    const next = this.#closed.shift();
    if (!next) return this.#idle();
    // Records aborted while they waited (revoke, deadline) are not handed over: their handler call returns
    // and the runner leaves them uncommitted. The records of one partition state share their signal, read
    // once per run of them (a composite signal refreshes itself from its sources at every read).
    let signal: AbortSignal | undefined;
    let aborted = false;
    const batch = next.filter((e) => {
      if (e.record.ctx.signal !== signal) {
        signal = e.record.ctx.signal;
        aborted = signal.aborted;
      }
      if (!aborted) return true;
      e.outcome.release();
      return false;
    });
    if (batch.length === 0) return this.#drain();
    this.#running = true;
    const context: BatchContext = { topic: this.topic, partition: this.partition, signal: batch[0]!.record.ctx.signal };
    let running: Promise<BatchOutcomes | void>;
    try {
      running = this.#run(batch, context);
    } catch (thrown) {
      // A handler that is not an async function may throw before returning a promise: the same as rejecting.
      running = Promise.reject(toError(thrown));
    }
    void running
      .then(
        (outcomes) => {
          if (outcomes && outcomes.length > batch.length) {
            const error = new StreamError(
              'STATE_INVALID',
              `batch handler of ${this.topic}[${this.partition}] returned ${outcomes.length} outcomes for ${batch.length} records`,
            );
            for (const e of batch) e.outcome.release(error);
            return;
          }
          for (let i = 0; i < batch.length; i += 1) {
            const failed = outcomes?.[i];
            batch[i]!.outcome.release(failed === undefined ? undefined : toError(failed));
          }
        },
        (thrown: unknown) => {
          const error = toError(thrown);
          for (const e of batch) e.outcome.release(error);
        },
      )
      .finally(() => {
        this.#running = false;
        this.#drain();
      });
  }
}

/**
 * Turns a batch handler into the per-record handler the runtime runs: each record joins its partition's
 * open batch, and its outcome comes once its batch ran. So retries, dead letters, dependency waits, commits
 * and exactly-once transactions stay per record, while the handler sees one partition's records at a time,
 * in offset order, the partitions side by side.
 *
 * A record of the runtime's is held open like a send awaiting its acknowledgement (see `holdRecord`): its
 * handler call returns at once and the record keeps no promise, closure or async frame while it waits in
 * its batch. Any other context (a test's) waits on a promise of its own.
 *
 * A record that failed is retried on its own schedule: it joins a later batch of its partition, after
 * records that followed it.
 */
export function batchRecordHandler<K, V>(handler: BatchHandler<K, V>, options: BatchOptions): AgentHandler<K, V> {
  // By topic, then partition: no key string built per record.
  const topics = new Map<string, Map<number, PartitionBatches>>();
  const run = (batch: Entry[], context: BatchContext) => handler(batch.map((e) => e.record) as BatchRecord<K, V>[], context);
  const batchesOf = (ctx: AgentContext<K>): PartitionBatches => {
    let partitions = topics.get(ctx.topic);
    if (!partitions) topics.set(ctx.topic, (partitions = new Map<number, PartitionBatches>()));
    let batches = partitions.get(ctx.partition);
    if (!batches) {
      const of = partitions;
      const created = new PartitionBatches(ctx.topic, ctx.partition, run, options, () => {
        if (created.empty && of.get(created.partition) === created) of.delete(created.partition);
      });
      partitions.set(ctx.partition, (batches = created));
    }
    return batches;
  };
  return (value, ctx) => {
    const outcome = holdRecord(ctx);
    batchesOf(ctx).add({ record: { value, ctx }, outcome });
    return heldResult(outcome);
  };
}
