import { StreamError, toError } from '../errors.js';
import type { AnyGlobalTable } from '../global-table.js';
import type { Logger } from '../logger.js';
import type { Transport, TransportAdmin } from '../transport/transport.js';
import { backoffDelay, sleep } from './backoff.js';
import { readRange } from './read-range.js';

/** Backoff between failed polls or reads of a global table's topic (a broker down): never fails the app. */
const RETRY = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.2 } as const;

/** A global table's follow loop, as the app holds it. */
export interface GlobalTableFollower {
  /** Resolves once every partition was read up to the end offsets of the first poll; rejects if stopped first. */
  readonly loaded: Promise<void>;
  /** Resolves when the loop has ended (after its signal aborted), its admin client closed. Never rejects. */
  readonly done: Promise<void>;
}

/**
 * Loads a global table and then follows its topic until `signal` aborts: every `table.intervalMs` it reads
 * the end offsets and reads each partition that grew from its position to its new end (committed records,
 * in offset order per partition, the partitions concurrently). Polling end offsets rather than holding a
 * consumer open keeps one code path for load and follow (the restore's read, which stops at an end offset
 * whatever gaps compaction and transaction markers leave) and needs nothing new from the transports; the
 * price is staleness up to the interval plus one read. A failed poll or read is logged, recorded in the
 * table's health and retried with backoff, forever: the table goes stale, the app keeps running.
 */
export function followGlobalTable(transport: Transport, table: AnyGlobalTable, topic: string, signal: AbortSignal, log: Logger): GlobalTableFollower {
  let resolveLoaded!: () => void;
  let rejectLoaded!: (error: unknown) => void;
  const loaded = new Promise<void>((resolve, reject) => {
    resolveLoaded = resolve;
    rejectLoaded = reject;
  });
  loaded.catch(() => undefined);
  const admin: TransportAdmin = transport.admin();

  const step = async (): Promise<void> => {
    const ends = (await admin.endOffsets(topic)).map((o) => ({ partition: o.partition, end: Number(o.offset) }));
    table.polled(ends, Date.now());
    await Promise.all(
      ends.map(async ({ partition, end }) => {
        const from = table.position(partition);
        if (end <= from) return;
        const read = (start: number) =>
          readRange(transport, `global table ${table.name}`, {
            topic,
            partition,
            ...(start > 0 ? { start } : {}),
            end,
            signal,
            apply: (message) => {
              const skipped = table.apply(partition, message);
              if (skipped) {
                log.error({ globalTable: table.name, topic, ...skipped }, 'global table: skipped a record its codec or schema refuses');
              }
            },
          });
        try {
          await read(from);
        } catch (error) {
          if (!(error instanceof StreamError && error.context.outOfRange === true)) throw error;
          // Retention deleted records past the position between two polls: read what is left from the earliest.
          log.warn(
            { globalTable: table.name, topic, partition, position: from },
            'global table: records past its position were deleted; reading the partition again',
          );
          await read(0);
        }
        table.advance(partition, end);
      }),
    );
  };

  const loop = async (): Promise<void> => {
    let failures = 0;
    let connected = false;
    try {
      while (!signal.aborted) {
        try {
          if (!connected) {
            await admin.connect();
            connected = true;
          }
          await step();
          failures = 0;
          if (!table.loaded) {
            table.markLoaded();
            log.info({ globalTable: table.name, topic, entries: table.size }, 'global table loaded');
            resolveLoaded();
          }
          await sleep(table.intervalMs, signal);
        } catch (error) {
          if (signal.aborted) break;
          const err = toError(error);
          // A transport that cannot read a partition never will: fail the start rather than retry forever.
          if (err instanceof StreamError && err.code === 'CONFIG_INVALID') {
            rejectLoaded(err);
            return;
          }
          failures += 1;
          table.failed(err);
          const delayMs = backoffDelay(RETRY, failures);
          log.warn({ err, globalTable: table.name, topic, failures, delayMs }, 'global table: reading its topic failed: will retry');
          await sleep(delayMs, signal).catch(() => undefined);
        }
      }
    } finally {
      rejectLoaded(signal.reason ?? new StreamError('ABORTED', `global table ${table.name}: stopped`));
      if (connected) await admin.disconnect().catch(() => undefined);
    }
  };

  const done = loop().catch((error: unknown) => log.error({ err: toError(error), globalTable: table.name }, 'global table follow loop ended'));
  return { loaded, done };
}
