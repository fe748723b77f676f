import { randomBytes } from 'node:crypto';
import type { AgentContext } from '../agent.js';
import { StreamError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Headers, OutgoingRecord } from '../record.js';
import type { AnyTable, Table, TableView, TableWriter } from '../table.js';
import type { WindowedTable, WindowedTableView } from '../windowed-table.js';
import type { Decoded, Topic } from '../topic.js';
import type { OutgoingMessage } from '../transport/transport.js';
import type { Delivery } from './partition.js';

/** Where a handler's sends go at once on the at-least-once path: the app's producer. */
export interface ImmediateSend {
  produce(messages: readonly OutgoingMessage[]): Promise<void>;
}

/**
 * The sends of one attempt on the at-least-once path that the broker has not acknowledged yet. A handler's
 * `ctx.send` resolves once its message is handed to the producer; the record is finished (and its offset
 * may commit) only once every send of it is acknowledged, and a send that fails fails the record. So the
 * next record need not wait for a broker round trip, and the commit never passes an unacknowledged output.
 */
export class PendingSends implements Held {
  #pending = 0;
  #error: Error | undefined;
  #listener: SendsListener | undefined;
  /** The last promise added: the sends of records in flight at once share one produce request's promise. */
  #last: Promise<void> | undefined;

  readonly #settle = (): void => {
    this.#pending -= 1;
    if (this.#pending === 0 && this.#listener) this.#listener.sendsSettled(this.#error);
  };

  readonly #fail = (error: unknown): void => {
    this.#error ??= toError(error);
    this.#settle();
  };

  /**
   * True once something other than sends holds the record (see {@link hold}): its `concurrency` slot stays
   * taken until it settles, as it would while its handler ran.
   */
  holdsSlot = false;

  /** Sends not acknowledged yet. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Holds the record open like a send awaiting its acknowledgement, until {@link release}: a batch agent's
   * record waits in its partition's batch this way, with no promise, closure or async frame of its own.
   */
  hold(): void {
    this.holdsSlot = true;
    this.#pending += 1;
  }

  /** Ends a {@link hold}: the record fails with `error`, if given, once nothing else is pending. */
  release(error?: Error): void {
    if (error) this.#fail(error);
    else this.#settle();
  }

  add(ack: Promise<void>): void {
    if (ack === this.#last) return;
    this.#last = ack;
    this.#pending += 1;
    ack.then(this.#settle, this.#fail);
  }

  /**
   * Tells `listener` once every send added so far is acknowledged or failed (with the first failure, if
   * any): at once when none is pending. A listener rather than a promise, so that a record waiting for its
   * acknowledgements keeps no async frame (nor its closures) alive meanwhile.
   */
  whenSettled(listener: SendsListener): void {
    if (this.#pending === 0) listener.sendsSettled(this.#error);
    else this.#listener = listener;
  }

  /** Resolves once every send added so far is acknowledged or failed: with the first failure, if any. */
  settled(): Promise<Error | undefined> {
    return new Promise((resolve) => this.whenSettled({ sendsSettled: resolve }));
  }
}

/** How a record held open (see {@link PendingSends.hold}) is told its outcome: nothing (processed) or its error. */
export interface Held {
  release(error?: Error): void;
}

/**
 * What a handler returns once it left its record held open (in a batch, in a stream's queue): its outcome
 * comes through the hold, not through this promise.
 */
export const HELD: Promise<void> = Promise.resolve();

/** The hold of a record whose context is not the runtime's (a test's): its outcome settles {@link promise}. */
class PromisedHold implements Held {
  readonly promise: Promise<void>;
  readonly release: (error?: Error) => void;

  constructor() {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    this.promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.release = (error) => (error ? reject(error) : resolve());
  }
}

/**
 * Holds a handler's record open until the returned hold is released (a batch's record, a stream's). The
 * runtime's record ({@link RecordContext.hold}) keeps no promise, closure or async frame meanwhile; any other
 * context (a test's) gets a hold that settles a promise. The handler returns {@link heldResult} of it.
 */
export function holdRecord(ctx: AgentContext<unknown>): Held {
  return ctx instanceof RecordContext ? ctx.hold() : new PromisedHold();
}

/** What a handler returns for a record it held with {@link holdRecord}: {@link HELD}, or a test's promise. */
export function heldResult(held: Held): Promise<void> {
  return held instanceof PromisedHold ? held.promise : HELD;
}

/** Told by {@link PendingSends.whenSettled} that a record's sends are all acknowledged, or one failed. */
export interface SendsListener {
  sendsSettled(error: Error | undefined): void;
}

const SENT: Promise<void> = Promise.resolve();
const NO_TABLES: ReadonlySet<AnyTable> = new Set();

const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;

/**
 * Continues the consumed record's W3C trace in what its handler sends: same trace id, new parent span.
 * Undefined when the record carries no `traceparent`, or one that is not version 00.
 */
export function childTraceparent(consumed: Headers): string | undefined {
  const parent = consumed.traceparent;
  if (parent === undefined) return undefined;
  const match = TRACEPARENT.exec(parent);
  return match ? `00-${match[1]}-${randomBytes(8).toString('hex')}-${match[2]}` : undefined;
}

/**
 * What a handler gets as `ctx`. A class rather than an object literal with closures: one is built per
 * record, so its fields live on one object and its methods on the prototype.
 */
export class RecordContext implements AgentContext<unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: unknown;
  readonly headers: Headers;
  readonly attempt: number;
  readonly signal: AbortSignal;
  readonly #timestamp: string;
  /** The agent's logger; {@link log} derives the record's child from it on first use. */
  readonly #baseLog: Logger;
  #log: Logger | undefined;
  readonly #outputs: OutgoingMessage[];
  /** Where sends go at once (at-least-once), or null when they join the partition's transaction. */
  readonly #host: ImmediateSend | null;
  /** Whether `ctx.send` resolves before the acknowledgement, collecting it into {@link pendingSends}. */
  readonly #trackSends: boolean;
  /** Built on the first send: most records of a handler that sends nothing then allocate nothing for it. */
  #sends: PendingSends | undefined;
  readonly #traceparent: string | undefined;
  readonly #delivery: Delivery;
  /** The agent's tables (empty for an agent without any). */
  readonly #tables: ReadonlySet<AnyTable>;
  /** Views handed out by {@link table}, flushed when the handler returns. */
  #views: Map<AnyTable, TableWriter> | undefined;

  /**
   * @param attempt counted over every stage: 1 on the first attempt.
   * @param log the agent's logger: the record's child logger is built from it on first use (most records log nothing).
   * @param outputs collects what the handler sends when `host` is null (exactly-once).
   * @param host sends at once, or null to collect into `outputs`.
   * @param trackSends with `host`: a send resolves once handed to the producer, its acknowledgement
   *   collected into {@link pendingSends}; otherwise it resolves with the acknowledgement.
   */
  constructor(
    delivery: Delivery,
    decoded: Decoded<unknown, unknown>,
    attempt: number,
    signal: AbortSignal,
    log: Logger,
    outputs: OutgoingMessage[],
    host: ImmediateSend | null,
    trackSends = false,
    tables: ReadonlySet<AnyTable> = NO_TABLES,
  ) {
    this.#delivery = delivery;
    this.#tables = tables;
    this.topic = delivery.partition.topic;
    this.partition = delivery.partition.partition;
    this.offset = delivery.message.offset;
    this.key = decoded.key;
    this.headers = decoded.headers;
    this.attempt = attempt;
    this.signal = signal;
    this.#timestamp = delivery.message.timestamp;
    this.#baseLog = log;
    this.#outputs = outputs;
    this.#host = host;
    this.#trackSends = trackSends;
    this.#traceparent = childTraceparent(decoded.headers);
  }

  /** The sends of this attempt the broker has not acknowledged yet; undefined when it sent nothing (or does not track). */
  get pendingSends(): PendingSends | undefined {
    return this.#sends;
  }

  /**
   * @internal the record stays open after its handler returned until the returned holder is released (its
   * outcome: released with an error, it fails); see {@link PendingSends.hold}.
   */
  hold(): PendingSends {
    const sends = (this.#sends ??= new PendingSends());
    sends.hold();
    return sends;
  }

  /** @internal the record finishes only once `ack` resolves (a changelog write, at least once); its rejection fails it. */
  awaitAck(ack: Promise<void>): void {
    (this.#sends ??= new PendingSends()).add(ack);
  }

  table<KIn, KOut, VIn, VOut>(table: WindowedTable<KIn, KOut, VIn, VOut>, options?: { readonly time?: Date | number }): WindowedTableView<KIn, KOut, VIn, VOut>;
  table<KIn, KOut, VIn, VOut>(table: Table<KIn, KOut, VIn, VOut>): TableView<KIn, KOut, VIn, VOut>;
  table(table: AnyTable, options?: { readonly time?: Date | number }): TableWriter {
    const existing = this.#views?.get(table);
    if (existing) {
      if (options?.time !== undefined && 'time' in existing && existing.time !== new Date(options.time).getTime()) {
        throw new StreamError('STATE_INVALID', `table ${table.name}: this record's view was already taken at another event time`);
      }
      return existing;
    }
    if (!this.#tables.has(table)) {
      throw new StreamError('CONFIG_INVALID', `table ${table.name} is not one of this agent's tables: list it in the agent's \`tables\` option`);
    }
    const store = this.#delivery.partition.tables.get(table);
    if (!store) throw new StreamError('STATE_INVALID', `table ${table.name} is not restored for ${this.topic}/${this.partition}`);
    const view = table.createView(store, {
      offset: Number(this.offset),
      timestamp: Number(this.#timestamp),
      time: options?.time,
      emit: (message) => {
        const ack = this.#emit(message);
        if (ack !== SENT) this.awaitAck(ack);
      },
    });
    (this.#views ??= new Map()).set(table, view);
    return view;
  }

  /**
   * @internal the handler returned: applies the writes of every table it used to the partition's stores and
   * returns their changelog messages (none for a redelivered record whose updates were applied before).
   */
  flushTables(): { table: AnyTable; messages: OutgoingMessage[] }[] {
    if (!this.#views) return [];
    const out: { table: AnyTable; messages: OutgoingMessage[] }[] = [];
    for (const [table, view] of this.#views) {
      const messages = view.flush(Number(this.offset));
      if (messages.length > 0) out.push({ table, messages });
    }
    this.#views = undefined;
    return out;
  }

  get timestamp(): Date {
    return new Date(Number(this.#timestamp));
  }

  /** A child logger carrying partition and offset, built on first use. */
  get log(): Logger {
    return (this.#log ??= this.#baseLog.child({ partition: this.partition, offset: this.offset }));
  }

  /**
   * Encodes and hands the record to the producer. At least once, it resolves without waiting for the
   * broker: the record's offset commits only after every send of it is acknowledged, and a send the broker
   * refuses fails the record (see {@link PendingSends}). Under exactly-once it joins the partition's
   * transaction. Not an async function: on the common path (synchronous schemas) a send costs no Promise
   * of its own beyond the producer's batch.
   */
  send<KIn, KOut, VIn, VOut>(topic: Topic<KIn, KOut, VIn, VOut>, record: OutgoingRecord<KIn, VIn>): Promise<void> {
    try {
      const traceparent = this.#traceparent;
      const withTrace: OutgoingRecord<KIn, VIn> =
        traceparent && !record.headers?.traceparent ? { ...record, headers: { ...record.headers, traceparent } } : record;
      const encoded = topic.encodeNow(withTrace);
      if (encoded instanceof Promise) return encoded.then((m) => this.#emit(m));
      return this.#emit(encoded);
    } catch (error) {
      return Promise.reject(toError(error));
    }
  }

  #emit(encoded: OutgoingMessage): Promise<void> {
    if (this.signal.aborted) throw new StreamError('ABORTED', `send to ${encoded.topic} after the record was aborted`, { cause: this.signal.reason });
    if (this.#host) {
      const ack = this.#host.produce([encoded]);
      if (!this.#trackSends) return ack;
      (this.#sends ??= new PendingSends()).add(ack);
      return SENT;
    }
    this.#outputs.push(encoded);
    return Promise.resolve();
  }
}
