import { NonRetryableError, StreamError } from './errors.js';
import type { OutgoingRecord } from './record.js';
import type { InputOf, OutputOf, Schema } from './schema.js';
import {
  PartitionStore,
  SOURCE_OFFSET_HEADER,
  STREAM_TIME_HEADER,
  Table,
  type TableKey,
  type TableOptions,
  type TableWriter,
  type ViewAccess,
} from './table.js';
import type { AnyTopic, Topic } from './topic.js';
import { emptyRawHeaders, type OutgoingMessage, type RawMessage } from './transport/transport.js';

export { STREAM_TIME_HEADER } from './table.js';

/** A window of event time: `[start, end)` in milliseconds since the epoch. */
export interface Window {
  readonly start: number;
  readonly end: number;
}

/** What a closed window held for one key: its final value. */
export interface ClosedWindow<K, V> {
  readonly key: K;
  readonly window: Window;
  readonly value: V;
}

/** One window of a key and its value, as `windows(key)` lists them. */
export interface WindowValue<V> {
  readonly window: Window;
  readonly value: V;
}

/** How a windowed table cuts event time. */
export interface WindowOptions {
  /** Width of each window in ms (a whole number ≥ 1). */
  readonly size: number;
  /**
   * Hopping windows: a new window starts every `step` ms (1 ≤ step ≤ size), so a record falls in
   * ⌈size / step⌉ windows. Default `size`: tumbling windows, one per record.
   */
  readonly step?: number;
  /**
   * How long (ms of stream time) after its end a window still takes late records. Default 0. A window
   * closes once the partition's stream time reaches `end + grace`: its final value is emitted (`onClose`)
   * and it is removed. A record whose every window has closed is late: `update` throws {@link LateRecordError}.
   */
  readonly grace?: number;
  /**
   * The furthest ahead of this process's clock (ms) an event time may be. Default one hour. Stream time only
   * moves forward, so one record stamped in the year 2262 would close every window and make every later
   * record late: such a record is refused ({@link EventTimeError}, dead-lettered) instead. `Infinity` turns
   * the check off (replaying data stamped by a clock you trust).
   */
  readonly maxFutureMs?: number;
}

/**
 * Where a windowed table emits each closed window: a typed topic, and how a closed window becomes a record
 * of it. Emitted by the record whose stream time closed the window, as its `ctx.send` would: under
 * exactly-once in its transaction, otherwise acknowledged before its offset commits.
 */
export interface WindowCloseOptions<K, V, TKIn, TKOut, TVIn, TVOut> {
  readonly topic: Topic<TKIn, TKOut, TVIn, TVOut>;
  readonly record: (closed: ClosedWindow<K, V>) => OutgoingRecord<TKIn, TVIn>;
}

/** Options of `app.windowedTable(name, options)`. */
export interface WindowedTableOptions<KS extends Schema, VS extends Schema, TKIn = never, TKOut = never, TVIn = never, TVOut = never> extends TableOptions<
  KS,
  VS
> {
  readonly window: WindowOptions;
  readonly onClose?: WindowCloseOptions<OutputOf<KS>, OutputOf<VS>, TKIn, TKOut, TVIn, TVOut>;
}

/** A record's event time is not a usable time (not finite, before 1970, too far ahead of the clock). Dead-lettered at once. */
export class EventTimeError extends NonRetryableError {}

/**
 * Every window of the record's event time has closed (its stream time passed their end plus grace): the
 * update cannot count anywhere. Dead-lettered at once with this reason, never dropped silently; a handler
 * that prefers to skip late records catches it.
 */
export class LateRecordError extends NonRetryableError {}

const WINDOW_ENTRY = 0x01;
const STREAM_TIME_ENTRY = 0x00;
const STREAM_TIME_KEY = Buffer.from([STREAM_TIME_ENTRY]);
const DEFAULT_MAX_FUTURE_MS = 3_600_000;

/** The changelog key of a key's window: a tag byte, the window's start (int64, big-endian), the key's bytes. */
function windowEntryKey(start: number, keyBytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(9 + keyBytes.length);
  out[0] = WINDOW_ENTRY;
  out.writeBigInt64BE(BigInt(start), 1);
  keyBytes.copy(out, 9);
  return out;
}

interface WindowEntry<KOut, VOut> {
  readonly key: KOut;
  readonly keyBytes: Buffer;
  readonly value: VOut;
}

/**
 * One partition of a windowed table: each key's open windows by start, an index of the keys by window start
 * (windows close in start order, all of a start at once), and the partition's stream time.
 */
export class WindowStore<KOut, VOut> extends PartitionStore<KOut, VOut> {
  /** The highest event time applied in this partition (ms); -Infinity before the first. */
  streamTime = Number.NEGATIVE_INFINITY;
  /** Windows by key id (the key's bytes as latin1), then by start. */
  readonly windows = new Map<string, Map<number, WindowEntry<KOut, VOut>>>();
  /** Key ids by window start. */
  readonly #byStart = new Map<number, Set<string>>();
  /** The starts of {@link #byStart}, ascending. */
  #starts: number[] = [];

  get(id: string, start: number): WindowEntry<KOut, VOut> | undefined {
    return this.windows.get(id)?.get(start);
  }

  put(id: string, start: number, entry: WindowEntry<KOut, VOut>): void {
    let byStart = this.windows.get(id);
    if (!byStart) this.windows.set(id, (byStart = new Map<number, WindowEntry<KOut, VOut>>()));
    byStart.set(start, entry);
    let ids = this.#byStart.get(start);
    if (!ids) {
      this.#byStart.set(start, (ids = new Set()));
      // Starts arrive mostly in order: search from the end.
      let i = this.#starts.length;
      while (i > 0 && this.#starts[i - 1]! > start) i -= 1;
      this.#starts.splice(i, 0, start);
    }
    ids.add(id);
  }

  remove(id: string, start: number): void {
    const byStart = this.windows.get(id);
    if (!byStart?.delete(start)) return;
    if (byStart.size === 0) this.windows.delete(id);
    const ids = this.#byStart.get(start);
    ids?.delete(id);
    if (ids?.size === 0) {
      this.#byStart.delete(start);
      this.#starts.splice(this.#starts.indexOf(start), 1);
    }
  }

  /** The windows that start at or before `lastStart`, oldest first, without removing them. */
  startingBy(lastStart: number): { id: string; start: number; entry: WindowEntry<KOut, VOut> }[] {
    const out: { id: string; start: number; entry: WindowEntry<KOut, VOut> }[] = [];
    for (const start of this.#starts) {
      if (start > lastStart) break;
      for (const id of this.#byStart.get(start)!) out.push({ id, start, entry: this.windows.get(id)!.get(start)! });
    }
    return out;
  }
}

/** A write of one key's window within one record's handler: `value` undefined deletes. */
interface PendingWindowWrite<KOut, VOut> {
  readonly key: TableKey<KOut>;
  readonly start: number;
  readonly value: VOut | undefined;
}

/**
 * A windowed table as seen by one record's handler, at the record's event time: reads and writes the
 * windows of the record's own partition. Writes are kept until the handler returns, then applied, written to
 * the changelog with the windows the record's stream time closed, and those windows emitted.
 */
export class WindowedTableView<KIn, KOut, VIn, VOut> implements TableWriter {
  /** The record's event time (ms since the epoch). */
  readonly time: number;
  readonly #table: WindowedTable<KIn, KOut, VIn, VOut>;
  readonly #store: WindowStore<KOut, VOut>;
  readonly #emit: (message: OutgoingMessage) => void;
  readonly #pending = new Map<string, PendingWindowWrite<KOut, VOut>>();
  /** The record was applied before (redelivered after a crash): its writes are dropped, and it is never late. */
  readonly #applied: boolean;

  /** @internal built by `ctx.table(table)` */
  constructor(
    table: WindowedTable<KIn, KOut, VIn, VOut>,
    store: WindowStore<KOut, VOut>,
    time: number,
    offset: number,
    emit: (message: OutgoingMessage) => void,
  ) {
    this.#table = table;
    this.#store = store;
    this.time = time;
    this.#applied = offset <= store.appliedOffset;
    this.#emit = emit;
  }

  #value(k: TableKey<KOut>, start: number): VOut | undefined {
    const pending = this.#pending.get(`${start}:${k.id}`);
    if (pending) return pending.value;
    return this.#store.get(k.id, start)?.value;
  }

  #at(key: KIn, time: number): VOut | undefined {
    const k = this.#table.keyIn(key, this.#store);
    const value = this.#value(k, this.#table.latestStart(time));
    return value === undefined ? this.#table.defaultValue() : value;
  }

  /** The key's value in the newest window that holds the record's event time (Faust's `current()`), or the default. */
  current(key: KIn): VOut | undefined {
    return this.#at(key, this.time);
  }

  /** The key's value in the newest window that holds this process's clock time (Faust's `now()`), or the default. */
  now(key: KIn): VOut | undefined {
    return this.#at(key, Date.now());
  }

  /** The key's value in the newest window that holds the event time `ms` before the record's (Faust's `delta()`), or the default. */
  delta(key: KIn, ms: number): VOut | undefined {
    return this.#at(key, this.time - ms);
  }

  /** Every window the partition still holds for the key (open ones: closed windows are emitted and removed), oldest first. */
  windows(key: KIn): WindowValue<VOut>[] {
    const k = this.#table.keyIn(key, this.#store);
    const starts = new Set(this.#store.windows.get(k.id)?.keys());
    for (const write of this.#pending.values()) if (write.key.id === k.id) starts.add(write.start);
    const out: WindowValue<VOut>[] = [];
    for (const start of [...starts].sort((a, b) => a - b)) {
      const value = this.#value(k, start);
      if (value !== undefined) out.push({ window: this.#table.windowOf(start), value });
    }
    return out;
  }

  /**
   * Sets the key's value in every open window that holds the record's event time (one for tumbling windows,
   * ⌈size / step⌉ for hopping ones) to `fn` of its current value (or the default). Throws
   * {@link LateRecordError} when all of them have closed.
   *
   * @example
   * ctx.table(clicksPerMinute).update(click.page, (n = 0) => n + 1);
   */
  update(key: KIn, fn: (current: VOut | undefined, window: Window) => VIn): void {
    const k = this.#table.keyIn(key, this.#store);
    for (const start of this.#openStarts()) {
      const current = this.#value(k, start);
      const window = this.#table.windowOf(start);
      const value = this.#table.validateValue(fn(current === undefined ? this.#table.defaultValue() : current, window));
      this.#pending.set(`${start}:${k.id}`, { key: k, start, value });
    }
  }

  /** Sets the key's value in every open window that holds the record's event time. */
  set(key: KIn, value: VIn): void {
    this.update(key, () => value);
  }

  /** Removes the key's value from every open window that holds the record's event time. */
  delete(key: KIn): void {
    const k = this.#table.keyIn(key, this.#store);
    for (const start of this.#openStarts()) this.#pending.set(`${start}:${k.id}`, { key: k, start, value: undefined });
  }

  /** Starts of the windows holding the record's event time that are still open, or LateRecordError. */
  #openStarts(): number[] {
    const table = this.#table;
    const starts = table.startsOf(this.time).filter((start) => !table.closedAt(start, this.#store.streamTime));
    // A redelivered record's update is in the store already (restored from the changelog), and stream time may
    // since have closed its window: it was on time when first applied, and its writes are dropped anyway.
    if (starts.length === 0 && !this.#applied) {
      const window = table.windowOf(table.latestStart(this.time));
      throw new LateRecordError(
        `table ${table.name}: record at event time ${new Date(this.time).toISOString()} is late: its window [${new Date(window.start).toISOString()}, ${new Date(window.end).toISOString()}) closed when stream time of partition ${this.#store.partition} reached ${new Date(this.#store.streamTime).toISOString()} (grace ${table.grace} ms)`,
        { context: { table: table.name, partition: this.#store.partition, eventTime: this.time, streamTime: this.#store.streamTime, grace: table.grace } },
      );
    }
    return starts;
  }

  /**
   * @internal the handler returned: applies its writes, advances the partition's stream time, closes (emits
   * and removes) the windows it passed, and returns the changelog messages of all of it. A redelivered record
   * whose updates were applied before changes nothing.
   */
  flush(offset: number): OutgoingMessage[] {
    const store = this.#store;
    const table = this.#table;
    if (this.#applied || offset <= store.appliedOffset) {
      this.#pending.clear();
      return [];
    }
    const streamTime = Math.max(store.streamTime, this.time);
    const closing = streamTime > store.streamTime ? store.startingBy(table.lastClosedStart(streamTime)) : [];
    if (this.#pending.size === 0 && streamTime === store.streamTime) return [];

    // Everything is encoded before anything is applied or sent: a value or emitted record that fails its
    // schema fails the record with the table untouched.
    const headers = emptyRawHeaders();
    headers[SOURCE_OFFSET_HEADER] = Buffer.from(String(offset));
    headers[STREAM_TIME_HEADER] = Buffer.from(String(streamTime));
    const entry = (key: Buffer, value: Buffer | null): OutgoingMessage => ({ topic: store.changelog, partition: store.partition, key, value, headers });
    const messages: OutgoingMessage[] = [];
    for (const write of this.#pending.values()) {
      messages.push(entry(windowEntryKey(write.start, write.key.bytes), write.value === undefined ? null : table.encodeValue(write.value)));
    }
    for (const closed of closing) messages.push(entry(windowEntryKey(closed.start, closed.entry.keyBytes), null));
    const emitted = closing.map((closed) => table.encodeClosed({ key: closed.entry.key, window: table.windowOf(closed.start), value: closed.entry.value }));
    // Stream time moved without a window write: one entry carries it, so a restore closes windows where this one did.
    if (messages.length === 0) messages.push(entry(STREAM_TIME_KEY, Buffer.from(String(streamTime))));

    for (const write of this.#pending.values()) {
      if (write.value === undefined) store.remove(write.key.id, write.start);
      else store.put(write.key.id, write.start, { key: write.key.key, keyBytes: write.key.bytes, value: write.value });
    }
    for (const closed of closing) store.remove(closed.id, closed.start);
    store.streamTime = streamTime;
    store.appliedOffset = offset;
    this.#pending.clear();
    for (const message of emitted) if (message) this.#emit(message);
    return messages;
  }
}

/**
 * A table of windows of event time per key: tumbling or hopping, with a grace period for late records,
 * closed windows emitted to a typed topic and removed. Partitioned, restored and written to its changelog
 * like a {@link Table}; create with `app.windowedTable(name, options)`, use in a handler through
 * `ctx.table(table)` (event time: the record's timestamp) or `ctx.table(table, { time })`.
 */
export class WindowedTable<KIn, KOut, VIn, VOut> extends Table<KIn, KOut, VIn, VOut> {
  readonly size: number;
  readonly step: number;
  readonly grace: number;
  readonly maxFutureMs: number;
  readonly #onClose: WindowCloseOptions<KOut, VOut, unknown, unknown, unknown, unknown> | undefined;

  /** @internal use `app.windowedTable` */
  constructor(name: string, options: WindowedTableOptions<Schema, Schema, unknown, unknown, unknown, unknown>) {
    super(name, options);
    const { size, step = size, grace = 0, maxFutureMs = DEFAULT_MAX_FUTURE_MS } = options.window;
    const whole = (n: number) => Number.isSafeInteger(n) && n >= 0;
    if (!whole(size) || size < 1) throw new StreamError('CONFIG_INVALID', `windowed table ${name}: window.size must be a whole number of ms ≥ 1, got ${size}`);
    if (!whole(step) || step < 1 || step > size)
      throw new StreamError('CONFIG_INVALID', `windowed table ${name}: window.step must be a whole number of ms from 1 to size (${size}), got ${step}`);
    if (!whole(grace)) throw new StreamError('CONFIG_INVALID', `windowed table ${name}: window.grace must be a whole number of ms ≥ 0, got ${grace}`);
    if (!(maxFutureMs >= 0)) throw new StreamError('CONFIG_INVALID', `windowed table ${name}: window.maxFutureMs must be ≥ 0, got ${maxFutureMs}`);
    this.size = size;
    this.step = step;
    this.grace = grace;
    this.maxFutureMs = maxFutureMs;
    this.#onClose = options.onClose;
  }

  /** The topic closed windows are emitted to, if any. */
  get emitsTo(): AnyTopic | undefined {
    return this.#onClose?.topic as AnyTopic | undefined;
  }

  /** The window that starts at `start`. */
  windowOf(start: number): Window {
    return { start, end: start + this.size };
  }

  /** Start of the newest window that holds `time`. */
  latestStart(time: number): number {
    return Math.floor(time / this.step) * this.step;
  }

  /** Starts of every window that holds `time`, newest first. */
  startsOf(time: number): number[] {
    const starts: number[] = [];
    for (let start = this.latestStart(time); start > time - this.size; start -= this.step) starts.push(start);
    return starts;
  }

  /** Whether the window starting at `start` has closed once stream time is `streamTime`. */
  closedAt(start: number, streamTime: number): boolean {
    return start + this.size + this.grace <= streamTime;
  }

  /** The start of the newest window closed once stream time is `streamTime`. */
  lastClosedStart(streamTime: number): number {
    return streamTime - this.size - this.grace;
  }

  /** @internal checks the event time a record gives (or its timestamp). */
  eventTime(access: ViewAccess, partition: number): number {
    const given = access.time;
    const time = given === undefined ? access.timestamp : given instanceof Date ? given.getTime() : given;
    const context = { table: this.name, partition, eventTime: String(time) };
    if (!Number.isSafeInteger(time) || time < 0) {
      throw new EventTimeError(`table ${this.name}: event time ${String(given ?? time)} is not a time from 1970 on in whole ms`, { context });
    }
    if (time > Date.now() + this.maxFutureMs) {
      throw new EventTimeError(
        `table ${this.name}: event time ${new Date(time).toISOString()} is more than ${this.maxFutureMs} ms ahead of this clock: refused, since stream time only moves forward and would close every window`,
        { context },
      );
    }
    return time;
  }

  /** @internal the emitted record of a closed window, encoded; undefined without `onClose`. */
  encodeClosed(closed: ClosedWindow<KOut, VOut>): OutgoingMessage | undefined {
    const onClose = this.#onClose;
    if (!onClose) return undefined;
    const encoded = onClose.topic.encodeNow(onClose.record(closed));
    if (encoded instanceof Promise) {
      throw new StreamError(
        'CONFIG_INVALID',
        `windowed table ${this.name}: topic ${onClose.topic.name} validates asynchronously; onClose topics must validate synchronously`,
      );
    }
    return encoded;
  }

  /**
   * The key's open windows, oldest first, with the partition's stream time: `{ streamTime, windows: [{ start,
   * end, value }] }` (times as ISO strings), or undefined when it has none.
   */
  override queryValue(store: PartitionStore<KOut, VOut>, bytes: Buffer): unknown {
    const windows = (store as WindowStore<KOut, VOut>).windows.get(bytes.toString('latin1'));
    if (!windows || windows.size === 0) return undefined;
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      streamTime: iso((store as WindowStore<KOut, VOut>).streamTime),
      windows: [...windows].sort(([a], [b]) => a - b).map(([start, entry]) => ({ start: iso(start), end: iso(start + this.size), value: entry.value })),
    };
  }

  override createStore(changelog: string, partition: number, partitions: number): WindowStore<KOut, VOut> {
    return new WindowStore<KOut, VOut>(changelog, partition, partitions);
  }

  override createView(store: PartitionStore<KOut, VOut>, access: ViewAccess): WindowedTableView<KIn, KOut, VIn, VOut> {
    return new WindowedTableView(this, store as WindowStore<KOut, VOut>, this.eventTime(access, store.partition), access.offset, (m) => access.emit(m));
  }

  override applyEntry(store: PartitionStore<KOut, VOut>, message: RawMessage): void {
    const windows = store as WindowStore<KOut, VOut>;
    windows.noteRestored(message);
    const streamTime = message.headers[STREAM_TIME_HEADER];
    if (streamTime) windows.streamTime = Math.max(windows.streamTime, Number(streamTime.toString()));
    const key = message.key;
    if (key === null || (key.length === 1 && key[0] === STREAM_TIME_ENTRY)) return;
    if (key.length < 9 || key[0] !== WINDOW_ENTRY) {
      throw new StreamError(
        'STATE_INVALID',
        `table ${this.name}: changelog entry at offset ${message.offset} is not a window entry (written by something else?)`,
        {
          context: { table: this.name, partition: store.partition, offset: message.offset },
        },
      );
    }
    const start = Number(key.readBigInt64BE(1));
    const keyBytes = key.subarray(9);
    const id = keyBytes.toString('latin1');
    if (message.value === null) windows.remove(id, start);
    else
      windows.put(id, start, {
        key: this.decodeKey(keyBytes, message.offset),
        keyBytes: Buffer.from(keyBytes),
        value: this.decodeValue(message.value, message.offset),
      });
  }

  override toString(): string {
    return `WindowedTable(${this.name})`;
  }
}

/** The windowed table type `app.windowedTable` returns for the given schemas. */
export type WindowedTableOf<KS extends Schema, VS extends Schema> = WindowedTable<InputOf<KS>, OutputOf<KS>, InputOf<VS>, OutputOf<VS>>;
