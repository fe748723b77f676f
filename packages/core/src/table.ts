import { jsonCodec, stringCodec, type Codec } from './codec.js';
import { DecodeError, EncodeError, StreamError, toError } from './errors.js';
import { validate, type InputOf, type OutputOf, type Schema } from './schema.js';
import type { LocalPartition, LocalStore } from './table-store.js';
import { keyPartition } from './transport/memory/partitioner.js';
import { emptyRawHeaders, type OutgoingMessage, type RawMessage } from './transport/transport.js';

/** Header of a changelog entry naming the source offset whose processing wrote it (decimal string). */
export const SOURCE_OFFSET_HEADER = 'stream-source-offset';

/**
 * Header of a windowed table's changelog entry: the partition's stream time (ms, decimal) once the record
 * that wrote it was applied. A restore takes the highest, so windows close where they would have.
 */
export const STREAM_TIME_HEADER = 'stream-time';

/** Options of `app.table(name, options)`. */
export interface TableOptions<KS extends Schema, VS extends Schema> {
  /** Schema of the keys: the same as the key schema of the topic whose agent uses the table. */
  readonly key: KS;
  readonly value: VS;
  /** What `get` returns for a key without a value (a function is called per read). Default `undefined`. */
  readonly default?: OutputOf<VS> | (() => OutputOf<VS>);
  /** Codec of the keys: the source topic's key codec (default UTF-8 strings), so keys hash to the same partition. */
  readonly keyCodec?: Codec;
  /** Codec of the values in the changelog. Default JSON. */
  readonly codec?: Codec;
}

/** The changelog topic of a table: `<groupId>-<table>-changelog` (the group id is the app id unless set). */
export function changelogTopicName(groupId: string, table: string): string {
  return `${groupId}-${table}-changelog`;
}

/** One partition's entries: what a table holds for the partition of the source topic an instance owns. */
export class PartitionStore<KOut, VOut> {
  readonly partition: number;
  /** Partitions of the source (and changelog) topic: a key must hash to {@link partition}. */
  readonly partitions: number;
  /** Entries by the key's encoded bytes (latin1). */
  readonly entries = new Map<string, { readonly key: KOut; readonly value: VOut }>();
  /**
   * The highest source offset whose updates are applied here (restored from the changelog's headers, or
   * applied since): a record at or below it is a redelivery whose updates the table already holds.
   */
  appliedOffset = -1;
  /** Changelog entries read during restore. */
  restored = 0;
  /** Entries loaded from the local store during restore (see `AppOptions.stateDir`). */
  loaded = 0;

  /** The changelog topic this partition's writes go to (its partition {@link partition}). */
  readonly changelog: string;

  /** @internal counts a restored changelog entry and takes the source offset it names as applied. */
  noteRestored(message: RawMessage): void {
    this.restored += 1;
    const source = message.headers[SOURCE_OFFSET_HEADER];
    if (source) this.appliedOffset = Math.max(this.appliedOffset, Number(source.toString()));
  }

  constructor(changelog: string, partition: number, partitions: number) {
    this.changelog = changelog;
    this.partition = partition;
    this.partitions = partitions;
  }
}

/** A pending update of one key within one record's handler: `value` undefined deletes. */
interface PendingWrite<KOut, VOut> {
  readonly keyBytes: Buffer;
  readonly key: KOut;
  readonly value: VOut | undefined;
}

/** A key as a table holds it: its encoded bytes, their latin1 string (the store's map key) and its validated value. */
export interface TableKey<KOut> {
  readonly bytes: Buffer;
  readonly id: string;
  readonly key: KOut;
}

/** @internal what a record's view of a table gives back when its handler returns. */
export interface TableWriter {
  /** Applies the handler's writes and returns their changelog messages (none for a redelivered record). */
  flush(offset: number): OutgoingMessage[];
}

/** @internal what a view needs from the record whose handler uses it. */
export interface ViewAccess {
  /** The record's offset: a view of a record whose updates the store already holds (a redelivery) changes nothing. */
  readonly offset: number;
  /** The record's timestamp (ms): the default event time of windowed tables. */
  readonly timestamp: number;
  /** The event time the handler gave (`ctx.table(table, { time })`), if any. */
  readonly time: Date | number | undefined;
  /** Sends an encoded message as the handler's `ctx.send` would (at once, or into its transaction). */
  emit(message: OutgoingMessage): void;
}

/**
 * A table as seen by one record's handler: reads and writes the record's own partition only. Writes are
 * kept until the handler returns, then applied to the store and written to the changelog together (one
 * produce of one partition, so a crash leaves all or none of them). A handler that throws leaves nothing.
 */
export class TableView<KIn, KOut, VIn, VOut> implements TableWriter {
  readonly #table: Table<KIn, KOut, VIn, VOut>;
  readonly #store: PartitionStore<KOut, VOut>;
  readonly #pending = new Map<string, PendingWrite<KOut, VOut>>();

  /** @internal built by `ctx.table(table)` */
  constructor(table: Table<KIn, KOut, VIn, VOut>, store: PartitionStore<KOut, VOut>) {
    this.#table = table;
    this.#store = store;
  }

  #keyOf(key: KIn): TableKey<KOut> {
    return this.#table.keyIn(key, this.#store);
  }

  /** The key's value (this record's own writes included), or the table's default. */
  get(key: KIn): VOut | undefined {
    const { id } = this.#keyOf(key);
    const pending = this.#pending.get(id);
    const value = pending ? pending.value : this.#store.entries.get(id)?.value;
    return value === undefined ? this.#table.defaultValue() : value;
  }

  /** True when the key has a value (the default does not count). */
  has(key: KIn): boolean {
    const { id } = this.#keyOf(key);
    const pending = this.#pending.get(id);
    return pending ? pending.value !== undefined : this.#store.entries.has(id);
  }

  set(key: KIn, value: VIn): void {
    const k = this.#keyOf(key);
    this.#pending.set(k.id, { keyBytes: k.bytes, key: k.key, value: this.#table.validateValue(value) });
  }

  delete(key: KIn): void {
    const k = this.#keyOf(key);
    this.#pending.set(k.id, { keyBytes: k.bytes, key: k.key, value: undefined });
  }

  /**
   * @internal the handler returned: applies its writes to the store and returns their changelog messages
   * (none when the record at `offset` was applied before: a redelivery must not apply its update twice).
   */
  flush(offset: number): OutgoingMessage[] {
    const store = this.#store;
    if (this.#pending.size === 0) return [];
    if (offset <= store.appliedOffset) {
      this.#pending.clear();
      return [];
    }
    const headers = emptyRawHeaders();
    headers[SOURCE_OFFSET_HEADER] = Buffer.from(String(offset));
    // Encoded first: a value the codec refuses fails the record before anything is applied.
    const messages: OutgoingMessage[] = [...this.#pending.values()].map((write) => ({
      topic: store.changelog,
      partition: store.partition,
      key: write.keyBytes,
      value: write.value === undefined ? null : this.#table.encodeValue(write.value),
      headers,
    }));
    for (const [id, write] of this.#pending) {
      if (write.value === undefined) store.entries.delete(id);
      else store.entries.set(id, { key: write.key, value: write.value });
    }
    store.appliedOffset = offset;
    this.#pending.clear();
    return messages;
  }
}

/**
 * A keyed table partitioned like the topic of the agents that use it, kept in memory and backed by a
 * compacted changelog topic. Create with `app.table(name, options)`; use in a handler through
 * `ctx.table(table)`.
 */
export class Table<KIn, KOut, VIn, VOut> {
  readonly name: string;
  readonly #key: Schema;
  readonly #value: Schema;
  readonly #keyCodec: Codec;
  readonly #codec: Codec;
  readonly #default: VOut | (() => VOut) | undefined;
  /** Changelog writes not acknowledged yet, per partition: a new restore of the partition waits for them. */
  readonly #inFlight = new Map<number, Set<Promise<void>>>();
  readonly #writers = new Map<number, ChangelogWriter>();
  #local: LocalStore | undefined;
  readonly #localPartitions = new Map<number, LocalPartition>();

  /** @internal use `app.table` */
  constructor(name: string, options: TableOptions<Schema, Schema>) {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(name))
      throw new StreamError('CONFIG_INVALID', `invalid table name ${JSON.stringify(name)}: use 1-200 of [A-Za-z0-9._-]`);
    this.name = name;
    this.#key = options.key;
    this.#value = options.value;
    this.#keyCodec = options.keyCodec ?? stringCodec;
    this.#codec = options.codec ?? jsonCodec;
    this.#default = options.default as VOut | (() => VOut) | undefined;
  }

  /** @internal */
  defaultValue(): VOut | undefined {
    const d = this.#default;
    return typeof d === 'function' ? (d as () => VOut)() : d;
  }

  #sync<T>(result: T | Promise<T>, part: 'key' | 'value'): T {
    if (result instanceof Promise) {
      throw new StreamError('CONFIG_INVALID', `table ${this.name}: the ${part} schema validates asynchronously; table schemas must validate synchronously`);
    }
    return result;
  }

  /** @internal validates and encodes a key as the source topic would. */
  encodeKey(key: KIn): { bytes: Buffer; key: KOut } {
    const validated = this.#sync(validate(this.#key, key, `table ${this.name}`, 'key'), 'key') as KOut;
    try {
      return { bytes: this.#keyCodec.encode(validated), key: validated };
    } catch (error) {
      throw new EncodeError(`table ${this.name}`, 'key', error);
    }
  }

  /**
   * @internal validates and encodes a key a handler gave, and checks that it belongs to the store's partition:
   * a handler only sees its own partition's state.
   */
  keyIn(key: KIn, store: PartitionStore<unknown, unknown>): TableKey<KOut> {
    const { bytes, key: validated } = this.encodeKey(key);
    const partition = keyPartition(bytes, store.partitions);
    if (partition !== store.partition) {
      throw new StreamError(
        'STATE_INVALID',
        `table ${this.name}: key ${JSON.stringify(bytes.toString('utf8'))} belongs to partition ${partition}, but this record's partition is ${store.partition}: a handler only sees its own partition's state`,
        { context: { table: this.name, partition: store.partition, keyPartition: partition } },
      );
    }
    return { bytes, id: bytes.toString('latin1'), key: validated };
  }

  /** @internal decodes and validates a key read from the changelog. */
  decodeKey(bytes: Buffer, offset: string): KOut {
    return this.#sync(validate(this.#key, this.#keyCodec.decode(bytes), `table ${this.name}`, 'key', { offset }), 'key') as KOut;
  }

  /** @internal decodes and validates a value read from the changelog. */
  decodeValue(bytes: Buffer, offset: string): VOut {
    return this.#sync(validate(this.#value, this.#codec.decode(bytes), `table ${this.name}`, 'value', { offset }), 'value') as VOut;
  }

  /** @internal an empty store for one partition, filled by {@link applyEntry} during restore. */
  createStore(changelog: string, partition: number, partitions: number): PartitionStore<KOut, VOut> {
    return new PartitionStore<KOut, VOut>(changelog, partition, partitions);
  }

  /** @internal the view one record's handler gets through `ctx.table(table)`. */
  createView(store: PartitionStore<KOut, VOut>, access: ViewAccess): TableWriter {
    if (access.time !== undefined) {
      throw new StreamError('CONFIG_INVALID', `table ${this.name} is not windowed: ctx.table takes an event time only for a windowed table`);
    }
    return new TableView(this, store);
  }

  /**
   * @internal what a query (`GET /tables/<table>/<key>`) answers for the key with encoded bytes `bytes` in a
   * store: its value, or undefined when it has none.
   */
  queryValue(store: PartitionStore<KOut, VOut>, bytes: Buffer): unknown {
    return store.entries.get(bytes.toString('latin1'))?.value;
  }

  /** @internal decodes key bytes with the key codec (a table query's key, given as its encoded text); DecodeError when it cannot. */
  decodeQueryKey(bytes: Buffer): unknown {
    try {
      return this.#keyCodec.decode(bytes);
    } catch (error) {
      throw new DecodeError(`table ${this.name}`, 'key', error);
    }
  }

  /** @internal */
  validateValue(value: VIn): VOut {
    return this.#sync(validate(this.#value, value, `table ${this.name}`, 'value'), 'value') as VOut;
  }

  /** @internal */
  encodeValue(value: VOut): Buffer {
    try {
      return this.#codec.encode(value);
    } catch (error) {
      throw new EncodeError(`table ${this.name}`, 'value', error);
    }
  }

  /** @internal applies one changelog entry to a store during restore. */
  applyEntry(store: PartitionStore<KOut, VOut>, message: RawMessage): void {
    store.noteRestored(message);
    if (message.key === null) return;
    const id = message.key.toString('latin1');
    if (message.value === null) {
      store.entries.delete(id);
      return;
    }
    store.entries.set(id, { key: this.decodeKey(message.key, message.offset), value: this.decodeValue(message.value, message.offset) });
  }

  /**
   * @internal writes one record's changelog entries of `partition`. Writes of one partition go one produce
   * at a time, in order, those queued meanwhile together: concurrent produce requests can land out of
   * order (a retried one after a later one, seen on a fresh topic whose leader moved), and a restore takes
   * the last entry of a key and the highest source offset as applied.
   */
  write(partition: number, messages: readonly OutgoingMessage[], produce: (messages: readonly OutgoingMessage[]) => Promise<void>): Promise<void> {
    let writer = this.#writers.get(partition);
    if (!writer) this.#writers.set(partition, (writer = new ChangelogWriter(produce)));
    const ack = writer.write(messages);
    // Acknowledged writes reach the local store in changelog order (acks resolve in order), never before.
    this.#localPartitions.get(partition)?.track(ack, messages);
    this.#track(partition, ack);
    return ack;
  }

  /** @internal keeps this table's partitions in `store` as well (see `AppOptions.stateDir`). */
  useLocalStore(store: LocalStore | undefined): void {
    this.#local = store;
    this.#localPartitions.clear();
  }

  /** @internal the local store of `partition`, when the table has one. */
  localPartition(changelog: string, partition: number, partitions: number): LocalPartition | undefined {
    if (!this.#local) return undefined;
    let local = this.#localPartitions.get(partition);
    if (!local) this.#localPartitions.set(partition, (local = this.#local.partition(changelog, partition, partitions)));
    return local;
  }

  /** @internal the local store settings, if any. */
  get localStore(): LocalStore | undefined {
    return this.#local;
  }

  /**
   * @internal exactly-once: the transaction holding these outputs of `partition` committed; its changelog
   * entries go to the local store (an aborted transaction's never do).
   */
  committed(changelog: string, partition: number, outputs: readonly OutgoingMessage[]): void {
    const local = this.#localPartitions.get(partition);
    if (!local) return;
    const entries = outputs.filter((m) => m.topic === changelog && m.partition === partition);
    if (entries.length > 0) local.apply(entries);
  }

  #track(partition: number, ack: Promise<void>): void {
    let set = this.#inFlight.get(partition);
    if (!set) this.#inFlight.set(partition, (set = new Set()));
    const entry = ack.catch(() => undefined);
    set.add(entry);
    void entry.then(() => set.delete(entry));
  }

  /**
   * @internal a restore of `partition` begins (its writes so far settled): its store is rebuilt from the
   * changelog, consistent again, so writes may go out again after a failed one (see ChangelogWriter).
   */
  restoring(partition: number): void {
    if (this.#writers.get(partition)?.failed) this.#writers.delete(partition);
  }

  /** @internal resolves once every changelog write of `partition` made so far is acknowledged or failed. */
  async writesSettled(partition: number): Promise<void> {
    const set = this.#inFlight.get(partition);
    if (set && set.size > 0) await Promise.all([...set]);
  }

  toString(): string {
    return `Table(${this.name})`;
  }
}

/** The most changelog entries one produce carries (more records queued wait for the next). */
const CHANGELOG_PRODUCE_MAX = 1000;

/**
 * One changelog partition's writes: one produce in flight at a time, what queued meanwhile sent together
 * (in one request: the producer never splits one send, see SharedProducer.send).
 *
 * A failed produce fails every write queued or made after it, unsent, until the partition is restored
 * again: the store is ahead of the changelog from the failed record on, and a later entry landing would
 * carry a higher source offset, so a restore would take the failed record as applied and skip it when it
 * is processed again: its update lost.
 */
class ChangelogWriter {
  readonly #produce: (messages: readonly OutgoingMessage[]) => Promise<void>;
  #queue: { messages: readonly OutgoingMessage[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  #busy = false;
  /** The failure of a produce: every write since fails with it. */
  failed: Error | undefined;

  constructor(produce: (messages: readonly OutgoingMessage[]) => Promise<void>) {
    this.#produce = produce;
  }

  write(messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.#queue.push({ messages, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#busy || this.#queue.length === 0) return;
    // Whole records' entries (all or none of a record's land) up to a bound: after a stall the queue
    // can hold many records, and one produce of them all could pass the broker's request size limit.
    let count = 0;
    let take = 0;
    while (take < this.#queue.length && (take === 0 || count + this.#queue[take]!.messages.length <= CHANGELOG_PRODUCE_MAX)) {
      count += this.#queue[take]!.messages.length;
      take += 1;
    }
    const batch = this.#queue.splice(0, take);
    this.#busy = true;
    let sent: Promise<void>;
    try {
      sent = this.#produce(batch.flatMap((b) => b.messages));
    } catch (error) {
      sent = Promise.reject(toError(error));
    }
    sent
      .then(
        () => batch.forEach((b) => b.resolve()),
        (error: unknown) => {
          this.failed ??= new StreamError('TRANSPORT_FAILED', `an earlier changelog write of this partition failed: ${toError(error).message}`, {
            cause: error,
          });
          batch.forEach((b) => b.reject(error));
          for (const b of this.#queue.splice(0)) b.reject(this.failed);
        },
      )
      .finally(() => {
        this.#busy = false;
        this.#pump();
      })
      .catch(() => undefined);
  }
}

/** Any table, whatever its types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- variance: a Table of any key/value types
export type AnyTable = Table<any, any, any, any>;

/** The table type `app.table` returns for the given schemas. */
export type TableOf<KS extends Schema, VS extends Schema> = Table<InputOf<KS>, OutputOf<KS>, InputOf<VS>, OutputOf<VS>>;
