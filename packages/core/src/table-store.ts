import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database, RootDatabase, open as openLmdb } from 'lmdb';
import { settlesWithin } from './abort.js';
import { StreamError, toError } from './errors.js';
import { SOURCE_OFFSET_HEADER, STREAM_TIME_HEADER } from './table.js';
import { emptyRawHeaders, type RawMessage } from './transport/transport.js';

/*
 * A persistent local store of table partitions on LMDB, with a checkpointed changelog offset so that a
 * restart reads only the changelog's tail.
 *
 * THE INVARIANT. A partition's local store S with checkpoint C satisfies: every write in S is in the
 * changelog, and S ⊇ fold(changelog[0..C)) (S holds the fold of the changelog below C, plus possibly some
 * later entries of the changelog, applied in order). Then replaying changelog[C..end) over S gives exactly
 * fold(changelog[0..end)): every key the tail touches ends at its last tail write, every other key at its
 * value in the fold below C. So:
 * - An update reaches LMDB only once it is in the changelog: at least once after its produce is
 *   acknowledged, under exactly-once after its transaction committed (an aborted one never reaches it).
 *   The in-memory map, which serves reads, runs ahead of LMDB; LMDB runs behind the changelog, in order.
 * - C is an end offset E of the changelog partition, written as the checkpoint only once every changelog
 *   write that was in flight when E was read has been acknowledged and queued to LMDB: an entry below E was
 *   produced before the broker answered, so by a write issued before then (a write issued later lands at
 *   E or above). The checkpoint is queued after those writes, and lmdb-js commits writes in the order they
 *   were issued, so a crash never leaves a checkpoint without the writes below it. Under exactly-once, E is
 *   read in the commit chain (no transaction open) and never while the last commit is in doubt. A write
 *   that failed (its outcome unknown: it may be in the changelog but is not in S) stops checkpoints until
 *   the partition is restored again. This needs no quiescent moment, so sustained load does not starve it.
 * - A restore that reads a tail writes it to LMDB as well, then checkpoints at the end it read: a tail
 *   written by another owner is not in S until then.
 * - A store that cannot be proven consistent is discarded and the partition restored in full: no checkpoint
 *   (a crash before the first one, a full restore cut short), another changelog or partition count, C past
 *   the changelog's end (the topic was recreated) or before its start (retention deleted what was below it),
 *   or a checkpoint older than {@link LocalStoreOptions.maxCheckpointAgeMs} (compaction removes tombstones
 *   `delete.retention.ms` after they were written: a tombstone in the tail older than that may be gone, and
 *   the key it deleted would come back from S).
 */

/** Where and how tables keep their partitions on local disk: see `AppOptions.stateDir`. */
export interface LocalStoreOptions {
  /** A directory this instance alone writes (one LMDB environment per changelog in a subdirectory). */
  readonly dir: string;
  /**
   * A checkpoint older than this is not trusted (default 12 h, half Kafka's default `delete.retention.ms`
   * of 24 h): compaction may have removed a tombstone of the tail. Keep it below the changelog's
   * `delete.retention.ms`.
   */
  readonly maxCheckpointAgeMs?: number;
}

const DEFAULT_MAX_CHECKPOINT_AGE_MS = 12 * 3_600_000;
/** LMDB keys are at most 1,978 bytes (lmdb-js): longer changelog keys are stored under their SHA-256. */
const MAX_INLINE_KEY = 1_900;
const INLINE_KEY = 0x00;
const HASHED_KEY = 0x01;

/** The checkpoint of one partition's local store. */
export interface Checkpoint {
  readonly changelog: string;
  readonly partitions: number;
  /** Changelog offset C: the store holds the fold of every entry below it. */
  readonly offset: number;
  /** The highest source offset of the writes in the store. */
  readonly appliedOffset: number;
  /** The highest stream time of the writes in the store (windowed tables), or null. */
  readonly streamTime: number | null;
  /** When it was written (ms since the epoch). */
  readonly at: number;
}

/** What a changelog entry carries that the local store keeps: any message of the changelog. */
export interface ChangelogEntry {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, Buffer | null | undefined>>;
}

/** The LMDB key of a changelog key: a tag byte (LMDB refuses empty keys), the key or its SHA-256 when long. */
function storeKey(key: Buffer): Buffer {
  if (key.length <= MAX_INLINE_KEY) return Buffer.concat([Buffer.of(INLINE_KEY), key]);
  return Buffer.concat([Buffer.of(HASHED_KEY), createHash('sha256').update(key).digest()]);
}

/** The stored value: the changelog key's length (uint32), the key, the value (the key is needed when hashed). */
function storeValue(key: Buffer, value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + key.length + value.length);
  out.writeUInt32BE(key.length, 0);
  key.copy(out, 4);
  value.copy(out, 4 + key.length);
  return out;
}

/** The local store of every table of one app: one LMDB environment per changelog. */
export class LocalStore {
  readonly dir: string;
  readonly maxCheckpointAgeMs: number;
  readonly #envs = new Map<string, RootDatabase>();
  readonly #partitions = new Map<string, LocalPartition>();

  readonly #open: typeof openLmdb;

  /**
   * Opens a store in `options.dir`. lmdb (a native module) is loaded here, on first use: an app without
   * `stateDir` never loads it.
   */
  static async open(options: LocalStoreOptions): Promise<LocalStore> {
    const { open } = await import('lmdb');
    return new LocalStore(options, open);
  }

  private constructor(options: LocalStoreOptions, open: typeof openLmdb) {
    this.dir = options.dir;
    this.maxCheckpointAgeMs = options.maxCheckpointAgeMs ?? DEFAULT_MAX_CHECKPOINT_AGE_MS;
    this.#open = open;
  }

  #env(changelog: string): RootDatabase {
    let env = this.#envs.get(changelog);
    if (!env) {
      const path = join(this.dir, changelog);
      try {
        mkdirSync(path, { recursive: true });
        // One environment per changelog, a named database per partition and one for the checkpoints:
        // a partition's entries and its checkpoint commit in one environment's ordered write queue.
        env = this.#open({ path, maxDbs: 4096 });
      } catch (error) {
        throw new StreamError('CONFIG_INVALID', `cannot open the local table store at ${path}: ${toError(error).message}`, {
          cause: error,
          context: { path, changelog },
        });
      }
      this.#envs.set(changelog, env);
    }
    return env;
  }

  /** @internal the local store of one partition of a changelog (the same object for every assignment of it). */
  partition(changelog: string, partition: number, partitions: number): LocalPartition {
    const id = `${changelog}/${partition}`;
    let local = this.#partitions.get(id);
    if (!local) {
      const env = this.#env(changelog);
      local = new LocalPartition(
        env.openDB<Buffer, Buffer>({ name: `p${partition}`, keyEncoding: 'binary', encoding: 'binary' }),
        env.openDB<Checkpoint, string>({ name: 'checkpoints', encoding: 'msgpack' }),
        changelog,
        partition,
        partitions,
      );
      this.#partitions.set(id, local);
    }
    return local;
  }

  /** Waits for every write queued and closes the environments. */
  async close(): Promise<void> {
    await Promise.all([...this.#partitions.values()].map((p) => p.settled()));
    for (const partition of this.#partitions.values()) partition.close();
    await Promise.all([...this.#envs.values()].map((env) => env.close()));
    this.#envs.clear();
    this.#partitions.clear();
  }
}

/**
 * One partition's local store: its entries (by changelog key) and its checkpoint. Tracks the changelog
 * writes in flight, which a checkpoint waits for (see the invariant above).
 */
export class LocalPartition {
  readonly #entries: Database<Buffer, Buffer>;
  readonly #checkpoints: Database<Checkpoint, string>;
  readonly changelog: string;
  readonly partition: number;
  readonly partitions: number;
  /** Changelog writes issued and not yet settled (at least once), resolving once their entries are queued to LMDB. */
  readonly #inFlight = new Set<Promise<void>>();
  #appliedOffset = -1;
  #streamTime: number | null = null;
  #last: Promise<unknown> = Promise.resolve();
  /** Set when a changelog write failed: nothing of this partition is checkpointed until it is restored again. */
  #broken = false;
  /** Set once the environment closes: a write acknowledged later (a stop that timed out) is dropped. */
  #closed = false;

  /** @internal */
  constructor(entries: Database<Buffer, Buffer>, checkpoints: Database<Checkpoint, string>, changelog: string, partition: number, partitions: number) {
    this.#entries = entries;
    this.#checkpoints = checkpoints;
    this.changelog = changelog;
    this.partition = partition;
    this.partitions = partitions;
  }

  get #id(): string {
    return `p${this.partition}`;
  }

  /**
   * A changelog write of `entries` was issued: once `ack` resolves they go to LMDB (acknowledgements of one
   * partition resolve in changelog order); if it rejects, its outcome is unknown and checkpoints stop.
   */
  track(ack: Promise<void>, entries: readonly ChangelogEntry[]): void {
    const settled = ack.then(
      () => this.apply(entries),
      () => {
        this.#broken = true;
      },
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
  }

  /** False once a changelog write failed (until the next restore): no checkpoint can be proven. */
  get checkpointable(): boolean {
    return !this.#broken && !this.#closed;
  }

  /** @internal the environment closed. */
  close(): void {
    this.#closed = true;
  }

  /** Queues entries that are in the changelog, in changelog order: puts, tombstones remove. */
  apply(entries: readonly ChangelogEntry[]): void {
    // Dropped entries leave the store behind the changelog, never ahead: the next restore reads them from C.
    if (this.#closed) return;
    for (const entry of entries) {
      const source = entry.headers[SOURCE_OFFSET_HEADER];
      if (source) this.#appliedOffset = Math.max(this.#appliedOffset, Number(source.toString()));
      const time = entry.headers[STREAM_TIME_HEADER];
      if (time) this.#streamTime = Math.max(this.#streamTime ?? Number.NEGATIVE_INFINITY, Number(time.toString()));
      if (entry.key === null) continue;
      const write =
        entry.value === null ? this.#entries.remove(storeKey(entry.key)) : this.#entries.put(storeKey(entry.key), storeValue(entry.key, entry.value));
      // A write LMDB refused (a full disk) leaves the store behind the changelog: still consistent with its
      // checkpoint (the tail from it is read again), but no later checkpoint may claim the entry.
      this.#last = write.catch(() => {
        this.#broken = true;
      });
    }
  }

  /** Resolves once every write queued so far is committed (visible to reads). */
  async settled(): Promise<void> {
    await this.#last;
  }

  /**
   * The checkpoint, when the store can be trusted against a changelog partition whose offsets run from
   * `start` (undefined: unknown, the read checks) to `end`; otherwise the store is emptied (undefined).
   */
  trusted(end: number, start: number | undefined, maxAgeMs: number): Checkpoint | undefined {
    // A write that failed is settled (the restore waited for it) and the restore reads what landed.
    this.#broken = false;
    const checkpoint = this.#checkpoints.get(this.#id);
    const ok =
      checkpoint !== undefined &&
      checkpoint.changelog === this.changelog &&
      checkpoint.partitions === this.partitions &&
      checkpoint.offset <= end &&
      (start === undefined || checkpoint.offset >= start) &&
      Date.now() - checkpoint.at <= maxAgeMs;
    if (ok) {
      this.#appliedOffset = checkpoint.appliedOffset;
      this.#streamTime = checkpoint.streamTime;
      return checkpoint;
    }
    this.discard();
    return undefined;
  }

  /** Empties the store: the checkpoint first, so a crash meanwhile leaves a store that is not trusted. */
  discard(): void {
    this.#checkpoints.removeSync(this.#id);
    this.#entries.clearSync();
    this.#appliedOffset = -1;
    this.#streamTime = null;
    this.#broken = false;
  }

  /**
   * The stored entries as changelog messages (offset `local`), then one without key carrying the
   * checkpoint's source offset and stream time in its headers, for `table.applyEntry`.
   */
  *messages(checkpoint: Checkpoint): Generator<RawMessage> {
    for (const { value } of this.#entries.getRange()) {
      const keyLength = value.readUInt32BE(0);
      yield {
        key: value.subarray(4, 4 + keyLength),
        value: value.subarray(4 + keyLength),
        headers: emptyRawHeaders(),
        offset: 'local',
        timestamp: '0',
      };
    }
    const headers = emptyRawHeaders();
    headers[SOURCE_OFFSET_HEADER] = Buffer.from(String(checkpoint.appliedOffset));
    if (checkpoint.streamTime !== null) headers[STREAM_TIME_HEADER] = Buffer.from(String(checkpoint.streamTime));
    yield { key: null, value: null, headers, offset: 'local', timestamp: '0' };
  }

  /**
   * Checkpoints `end`, an end offset of the changelog partition just read: waits (at most `waitMs`) for the
   * writes in flight now, which may lie below it, then writes the checkpoint after them. Resolves false,
   * writing nothing, when they did not settle in time or one failed.
   */
  async checkpointAt(end: number, waitMs: number): Promise<boolean> {
    const inFlight = [...this.#inFlight]; // taken synchronously: the writes issued before `end` was answered
    if (inFlight.length > 0 && !(await settlesWithin(Promise.all(inFlight), waitMs))) return false;
    if (!this.checkpointable) return false;
    await this.checkpoint(end);
    return true;
  }

  /**
   * Writes checkpoint `offset` after every write queued so far (LMDB commits in order), and resolves once
   * it is durable. Only for an offset below which every entry is queued (see {@link checkpointAt}).
   */
  async checkpoint(offset: number): Promise<void> {
    const checkpoint: Checkpoint = {
      changelog: this.changelog,
      partitions: this.partitions,
      offset,
      appliedOffset: this.#appliedOffset,
      streamTime: this.#streamTime,
      at: Date.now(),
    };
    const written = this.#checkpoints.put(this.#id, checkpoint);
    this.#last = written.catch(() => undefined);
    await written;
  }

  /** @internal the stored checkpoint (tests). */
  storedCheckpoint(): Checkpoint | undefined {
    return this.#checkpoints.get(this.#id);
  }

  /** @internal the number of entries stored (tests). */
  storedEntries(): number {
    return this.#entries.getCount();
  }
}
