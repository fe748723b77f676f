import { StreamError, toError } from './errors.js';
import { Table, changelogTopicName } from './table.js';
import { Topic } from './topic.js';
import type { RawMessage } from './transport/transport.js';
import { WindowedTable } from './windowed-table.js';

/** Default of {@link GlobalTableOptions.intervalMs}: how often a global table asks for its topic's end offsets. */
export const DEFAULT_GLOBAL_TABLE_INTERVAL_MS = 500;

/** Options every global table takes, whatever its source. */
interface GlobalTableCommon<VOut> {
  /**
   * How often (ms) the end offsets of the source topic are read once it is loaded: new records are applied
   * at most about this long (plus the read itself) after they are committed. Default 500.
   */
  readonly intervalMs?: number;
  /** What `get` returns for a key without a value (a function is called per read). Default `undefined`. */
  readonly default?: VOut | (() => VOut);
}

/**
 * Options of `app.globalTable(name, options)`: the compacted topic whose materialised view it is, either a
 * topic definition (`topic`: keys and values decoded and checked by its codecs and schemas) or another table's
 * changelog (`of`: the table's codecs and schemas; the changelog of this app's group unless `groupId` names
 * the group that writes it).
 *
 * @example
 * app.globalTable('instruments', { topic: instrumentTopic, intervalMs: 1000 });
 * app.globalTable('all-counts', { of: counts }); // counts = app.table('counts', …), written by an agent
 */
export type GlobalTableOptions<KIn, KOut, VIn, VOut> = GlobalTableCommon<VOut> &
  (
    | { readonly topic: Topic<KIn, KOut, VIn, VOut>; readonly of?: never; readonly groupId?: never }
    | { readonly of: Table<KIn, KOut, VIn, VOut>; readonly groupId?: string; readonly topic?: never }
  );

/** A value of the source topic that was skipped: it failed the codec or the schema (or had no key). */
export interface SkippedRecord {
  readonly partition: number;
  readonly offset: number;
  readonly reason: string;
}

/** How far one partition of a global table is read. */
export interface GlobalTablePartitionHealth {
  readonly partition: number;
  /** The next offset to read. */
  readonly position: number;
  /** The partition's end offset at the last poll. */
  readonly end: number;
}

/** A global table in `app.health().globalTables`. */
export interface GlobalTableHealth {
  readonly name: string;
  readonly topic: string;
  /** True once every partition was read up to the end offsets read at start. */
  readonly loaded: boolean;
  /** Records committed (as of the last poll) and not applied yet, over all partitions. */
  readonly lag: number;
  /** The poll interval (ms): how stale a loaded table may be, besides `lag`. */
  readonly intervalMs: number;
  /** Milliseconds since the last successful poll; undefined before the first. */
  readonly lastPollAgeMs: number | undefined;
  /** Records skipped because their key or value failed the codec or the schema. */
  readonly skipped: number;
  readonly lastSkipped: SkippedRecord | undefined;
  /** The last failed poll or read (retried with backoff), cleared by the next successful poll. */
  readonly lastError: string | undefined;
  readonly partitions: readonly GlobalTablePartitionHealth[];
}

/** How a global table reads its source: its topic name and how to decode and look up keys. */
interface GlobalSource<KIn, KOut, VOut> {
  topic(groupId: string): string;
  keyBytes(key: KIn): Buffer | null;
  decode(message: RawMessage, partition: number): { readonly key: KOut; readonly value: VOut };
}

function sourceOf<KIn, KOut, VIn, VOut>(name: string, options: GlobalTableOptions<KIn, KOut, VIn, VOut>): GlobalSource<KIn, KOut, VOut> {
  if (options.topic instanceof Topic) {
    const topic = options.topic;
    return {
      topic: () => topic.name,
      keyBytes: (key) => topic.encodeKeyNow(key),
      decode: (message, partition) => {
        const decoded = topic.decode(message, { partition });
        if (decoded instanceof Promise) {
          decoded.catch(() => undefined);
          throw new StreamError('CONFIG_INVALID', `topic ${topic.name}: its schemas validate asynchronously; a global table needs synchronous ones`);
        }
        return decoded;
      },
    };
  }
  const table = options.of;
  if (!(table instanceof Table)) {
    throw new StreamError('CONFIG_INVALID', `global table ${name}: give its source as { topic } or { of: table }`);
  }
  // A windowed table's changelog holds windows (tagged keys), not keys: it is no key → value view.
  if (table instanceof WindowedTable) {
    throw new StreamError('CONFIG_INVALID', `global table ${name}: ${table.name} is a windowed table; a global table can follow a plain table only`);
  }
  const groupId = options.groupId;
  return {
    topic: (appGroupId) => changelogTopicName(groupId ?? appGroupId, table.name),
    keyBytes: (key) => table.encodeKey(key).bytes,
    decode: (message) => {
      if (message.key === null) throw new StreamError('STATE_INVALID', 'a changelog entry without a key');
      return { key: table.decodeKey(message.key, message.offset), value: table.decodeValue(message.value ?? Buffer.alloc(0), message.offset) };
    },
  };
}

/**
 * A table every instance holds whole: the materialised view of a compacted topic, all its partitions, read
 * from the earliest offset at start (the app is not ready until then) and followed afterwards. Read it
 * anywhere (handlers of any partition, HTTP handlers, timers) with `get` and `has`; it has no writes: its
 * source's producer (another app, or the agent writing the table it follows) writes it. Create with
 * `app.globalTable(name, options)`.
 *
 * @example
 * const instruments = app.globalTable('instruments', { topic: instrumentTopic });
 * app.agent(orders, async (order, ctx) => {
 *   const instrument = instruments.get(order.symbol); // any symbol, whatever this record's partition
 * });
 */
export class GlobalTable<KIn, KOut, VOut> {
  readonly name: string;
  readonly intervalMs: number;
  readonly #source: GlobalSource<KIn, KOut, VOut>;
  readonly #default: VOut | (() => VOut) | undefined;
  readonly #entries = new Map<string, { readonly key: KOut; readonly value: VOut }>();
  #topic: string | undefined;
  readonly #positions = new Map<number, number>();
  readonly #ends = new Map<number, number>();
  #loaded = false;
  #polledAt: number | undefined;
  #skipped = 0;
  #lastSkipped: SkippedRecord | undefined;
  #lastError: string | undefined;

  /** @internal use `app.globalTable` */
  constructor(name: string, options: GlobalTableOptions<KIn, KOut, unknown, VOut>) {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(name))
      throw new StreamError('CONFIG_INVALID', `invalid global table name ${JSON.stringify(name)}: use 1-200 of [A-Za-z0-9._-]`);
    const intervalMs = options.intervalMs ?? DEFAULT_GLOBAL_TABLE_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 10) {
      throw new StreamError('CONFIG_INVALID', `global table ${name}: intervalMs must be at least 10 ms (got ${intervalMs})`);
    }
    this.name = name;
    this.intervalMs = intervalMs;
    this.#source = sourceOf(name, options);
    this.#default = options.default;
  }

  /** The key's value, or the table's default (also before the table is loaded: the app is not ready then). */
  get(key: KIn): VOut | undefined {
    const value = this.#entries.get(this.#id(key))?.value;
    if (value !== undefined) return value;
    const d = this.#default;
    return typeof d === 'function' ? (d as () => VOut)() : d;
  }

  /** True when the key has a value (the default does not count). */
  has(key: KIn): boolean {
    return this.#entries.has(this.#id(key));
  }

  /** Keys with a value. */
  get size(): number {
    return this.#entries.size;
  }

  /** Every key and value held (a snapshot). */
  entries(): [KOut, VOut][] {
    return [...this.#entries.values()].map((e) => [e.key, e.value]);
  }

  /** True once every partition was read up to the end offsets read at start. */
  get loaded(): boolean {
    return this.#loaded;
  }

  #id(key: KIn): string {
    const bytes = this.#source.keyBytes(key);
    return bytes === null ? '' : bytes.toString('latin1');
  }

  /** @internal the topic it follows, for the app's group id. */
  resolveTopic(groupId: string): string {
    this.#topic ??= this.#source.topic(groupId);
    return this.#topic;
  }

  /** @internal where partition `partition`'s next read starts. */
  position(partition: number): number {
    return this.#positions.get(partition) ?? 0;
  }

  /** @internal a read of `partition` reached `position` (its end offset: gaps and markers included). */
  advance(partition: number, position: number): void {
    if (position > this.position(partition)) this.#positions.set(partition, position);
  }

  /** @internal end offsets read by a poll. */
  polled(ends: readonly { readonly partition: number; readonly end: number }[], at: number): void {
    for (const { partition, end } of ends) this.#ends.set(partition, end);
    this.#polledAt = at;
    this.#lastError = undefined;
  }

  /** @internal */
  markLoaded(): void {
    this.#loaded = true;
  }

  /** @internal a poll or read failed (it is retried). */
  failed(error: Error): void {
    this.#lastError = error.message;
  }

  /**
   * @internal applies one committed record of `partition`, in offset order: a tombstone deletes its key; a
   * record whose key or value fails the codec or the schema is skipped and returned (the writer's fault:
   * following must go on), else undefined.
   */
  apply(partition: number, message: RawMessage): SkippedRecord | undefined {
    const offset = Number(message.offset);
    this.#positions.set(partition, offset + 1);
    try {
      if (message.key === null) throw new StreamError('STATE_INVALID', 'a record without a key');
      const id = message.key.toString('latin1');
      if (message.value === null) {
        this.#entries.delete(id);
        return undefined;
      }
      const { key, value } = this.#source.decode(message, partition);
      this.#entries.set(id, { key, value });
      return undefined;
    } catch (error) {
      const skipped = { partition, offset, reason: toError(error).message };
      this.#skipped += 1;
      this.#lastSkipped = skipped;
      return skipped;
    }
  }

  /** A snapshot of how far it is read (also in `app.health().globalTables`). */
  health(now: number = Date.now()): GlobalTableHealth {
    const partitions = [...this.#ends.keys()]
      .sort((a, b) => a - b)
      .map((partition) => ({ partition, position: this.position(partition), end: this.#ends.get(partition) ?? 0 }));
    return {
      name: this.name,
      topic: this.#topic ?? '',
      loaded: this.#loaded,
      lag: partitions.reduce((sum, p) => sum + Math.max(0, p.end - p.position), 0),
      intervalMs: this.intervalMs,
      lastPollAgeMs: this.#polledAt === undefined ? undefined : Math.max(0, now - this.#polledAt),
      skipped: this.#skipped,
      lastSkipped: this.#lastSkipped,
      lastError: this.#lastError,
      partitions,
    };
  }

  toString(): string {
    return `GlobalTable(${this.name})`;
  }
}

/** Any global table, whatever its types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- variance: a GlobalTable of any key/value types
export type AnyGlobalTable = GlobalTable<any, any, any>;
