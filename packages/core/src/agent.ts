import type { Logger } from './logger.js';
import type { Headers } from './record.js';
import type { BatchOptions } from './batch.js';
import type { RetryOptions } from './runtime/backoff.js';
import type { Classifier } from './runtime/classify.js';
import type { AnyTable, Table, TableView } from './table.js';
import type { WindowedTable, WindowedTableView } from './windowed-table.js';
import type { RecordSender } from './topic.js';

/**
 * How records of one agent may overtake each other when `concurrency` > 1:
 * - `'key'` (default): records with the same key run one at a time, in offset order; records without a key run freely;
 * - `'partition'`: records of the same partition run one at a time, in offset order;
 * - `'none'`: no order at all.
 */
export type Ordering = 'key' | 'partition' | 'none';

/** Where records go when they cannot be processed. */
export interface DeadLetterOptions {
  /** Topic name; default `<source topic>.dlq`. Created if missing. */
  readonly topic?: string;
}

/** Delayed retry stages of an agent; see {@link AgentOptions.retryTopics}. */
export interface RetryTopicsOptions {
  /** One stage per delay, in order, each a whole number of milliseconds up to a week. E.g. `[60_000, 600_000]`. */
  readonly delaysMs: readonly number[];
}

/**
 * Options of a batch agent (`app.agent(topic, { batch: { maxRecords, maxWaitMs } }, async (records, batch) => …)`):
 * an agent's options, without `ordering` (a batch keeps its partition's offset order).
 */
export interface BatchAgentOptions extends Omit<AgentOptions, 'ordering'> {
  readonly batch: BatchOptions;
  /**
   * Records in flight at once across the agent's partitions (in open, waiting and running batches). Default
   * unbounded: what each partition may hold (`buffer` of the app) bounds it.
   */
  readonly concurrency?: number;
}

/** Options of an agent. */
export interface AgentOptions {
  /** Name used in logs and metrics; default `<topic>-agent` (must be unique in the app). */
  readonly name?: string;
  /**
   * Records in flight at once for this agent. Default 1, the strictest order: since a record's sends no
   * longer wait for the broker before the next record starts, a CPU-bound agent gains nothing from more
   * (passthrough at concurrency 1 and 1,000: 55,703 and 53,577 records/s, and 27,729 and 26,059 on a machine
   * half as fast, in the full `pnpm bench` runs of 2026-12-08). Raise it for I/O-bound handlers (an HTTP call
   * per record), or use a batch agent.
   */
  readonly concurrency?: number;
  /** Default `'key'`. */
  readonly ordering?: Ordering;
  /** Retries in place for transient failures. Default 3 attempts, 100 ms doubling to 30 s, ±20 % jitter. */
  readonly retry?: RetryOptions;
  /**
   * Dead-letter topic for records that failed every attempt or cannot succeed (schema, decode,
   * {@link NonRetryableError}). `false` turns it off: such a record is then retried forever and holds its
   * partition, since nothing is ever dropped.
   */
  readonly deadLetter?: DeadLetterOptions | false;
  /**
   * Delayed retries on topics of their own, for failures that need minutes rather than milliseconds (a
   * partner API down for maintenance). When the in-place `retry` attempts are used up by a retryable
   * error, the record goes to `<topic>.retry.<delay>` (e.g. `orders.retry.1m` for 60,000 ms), the source
   * partition moves on, and the app consumes the record again from there once the delay has passed: the
   * same handler, with `retry` attempts again, then the next delay, and after the last one the dead-letter
   * topic (whose headers name the original topic, partition and offset). The topics are created when
   * missing, with the source's partition count. Not for `app.stream` agents.
   */
  readonly retryTopics?: RetryTopicsOptions;
  /**
   * Commits what the handler sends through `ctx.send` and the consumed offsets in one Kafka transaction,
   * so each input's outputs appear exactly once to read-committed consumers. Every agent of a topic must agree.
   */
  readonly exactlyOnce?: boolean;
  /**
   * Whose fault a failed attempt was, before the default classification ({@link classifyFailure}) is asked:
   * return `{ kind: 'record' }` (retried `retry.attempts` times, then dead-lettered), `{ kind: 'permanent' }`
   * (dead-lettered at once), `{ kind: 'dependency', dependency }` (waited out without limit, never
   * dead-lettered while the dependency is down) or `undefined` for the default.
   */
  readonly classify?: Classifier;
  /**
   * Tables the handler reads and writes through `ctx.table(table)` (see `app.table`). Each is partitioned
   * like this agent's topic: a partition is restored from the table's changelog before any of its records
   * is processed. An agent with tables processes each partition in offset order (`ordering` is
   * `'partition'`; `concurrency` spreads over partitions); not with `retryTopics`, batch or stream agents.
   */
  readonly tables?: readonly AnyTable[];
}

/**
 * What a handler gets beside the value: where the record came from, an abort signal, a logger, and
 * `send`, which joins the handler's transaction when exactly-once is on.
 */
export interface AgentContext<K> extends RecordSender {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: K;
  readonly headers: Headers;
  readonly timestamp: Date;
  /** 1 on the first attempt, 2 on the first retry, … */
  readonly attempt: number;
  /**
   * Fires when the partition is revoked or the shutdown deadline passes: pass it to HTTP and database
   * clients so abandoned work stops. An aborted record is not committed and will be processed again.
   */
  readonly signal: AbortSignal;
  /** A child logger carrying agent, topic, partition and offset. */
  readonly log: Logger;
  /**
   * One of the agent's windowed tables, for this record's partition at its event time: the record's
   * timestamp, or `time` (a field of the value, say). `update`, `set`, `delete` change every open window
   * that holds the event time; `current`, `now`, `delta`, `windows` read. An event time more than the
   * table's `maxFutureMs` ahead, or one whose every window closed, fails the record at once (dead-lettered).
   */
  table<KIn, KOut, VIn, VOut>(table: WindowedTable<KIn, KOut, VIn, VOut>, options?: { readonly time?: Date | number }): WindowedTableView<KIn, KOut, VIn, VOut>;
  /**
   * One of the agent's tables (its `tables` option), for this record's partition: `get`, `has`, `set`,
   * `delete`. Writes apply when the handler returns; a handler that throws leaves the table untouched.
   */
  table<KIn, KOut, VIn, VOut>(table: Table<KIn, KOut, VIn, VOut>): TableView<KIn, KOut, VIn, VOut>;
}

/**
 * Processes one record. Resolving marks it done; throwing hands it to the retry and dead-letter policy.
 *
 * @example
 * app.agent(orders, { concurrency: 32 }, async (order, ctx) => { await mailer.send(order, { signal: ctx.signal }) });
 */
export type AgentHandler<K, V> = (value: V, ctx: AgentContext<K>) => Promise<void>;
