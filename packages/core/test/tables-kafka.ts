/**
 * Helpers of the table integration tests on Kafka: input production, worker processes
 * (`table-worker.mjs`, a counting app), progress, and the table a changelog holds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { localServers, testKafka, waitUntil } from '@stream/local-stack';
import { KAFKA_CLIENTS, SOURCE_OFFSET_HEADER, KafkaTransport, silentLogger, type KafkaClient, type Transport, type TransportAdmin } from '../src/index.js';
import { selectTransport } from '../src/transport/select.js';

export const brokers = [...localServers().kafkaBrokers];

/** The Kafka clients the table tests run on: `describe.each(clients)`. */
export const clients: readonly KafkaClient[] = KAFKA_CLIENTS;

/** A transport on the local broker with `client`, built as an app builds it (`transport: client`). */
export function clientTransport(client: KafkaClient, clientId = 'tables-test'): Transport {
  return selectTransport({ id: clientId, brokers, transport: client }, silentLogger());
}
const WORKER = fileURLToPath(new URL('./table-worker.mjs', import.meta.url));

/**
 * Writes `total` records `{ n }` keyed `k<n % keys>` to `input` in batches of 10,000 (a few at once), and
 * returns how many of each key it wrote: the reference the counts must equal.
 */
export async function produceCountingInput(input: string, total: number, keys: number): Promise<Map<string, number>> {
  const expected = new Map<string, number>();
  const producer = testKafka().producer();
  await producer.connect();
  try {
    const batch = 10_000;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < total; i += batch) {
      const messages = Array.from({ length: Math.min(batch, total - i) }, (_, j) => ({ key: `k${(i + j) % keys}`, value: JSON.stringify({ n: i + j }) }));
      for (const m of messages) expected.set(m.key, (expected.get(m.key) ?? 0) + 1);
      sends.push(producer.send({ topic: input, messages }));
      if (sends.length === 4) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
  } finally {
    await producer.disconnect();
  }
  return expected;
}

export interface Worker {
  readonly child: ChildProcess;
  /** Resolves once the app is ready (joined, its partitions restored): a SIGTERM from then on stops it gracefully. */
  readonly ready: Promise<void>;
  /** Its exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Per partition: the changelog entries its last restore read. */
  readonly restored: ReadonlyMap<number, number>;
  /** Per partition: its last local-store checkpoint (with STATE_DIR). */
  readonly checkpoints: ReadonlyMap<number, number>;
}

/** What table-worker.mjs reports over IPC: 'ready', or a partition's restore or checkpoint. */
type WorkerMessage = 'ready' | { readonly kind: 'restored' | 'checkpointed'; readonly partition: number; readonly restored?: number; readonly offset?: number };

/**
 * Starts one `table-worker.mjs` instance of app `id` over `input`. `env` adds to its environment
 * (WORKER_DELAY_MS, KAFKA_CLIENT, ...). WORKER_LOG_LEVEL=info shows the workers' logs.
 */
export function startTableWorker(id: string, input: string, exactlyOnce: boolean, env: Record<string, string> = {}): Worker {
  const child = fork(WORKER, [brokers.join(','), id, input], {
    stdio: ['ignore', 'ignore', process.env.WORKER_LOG_LEVEL ? 'inherit' : 'ignore', 'ipc'],
    env: { ...process.env, EXACTLY_ONCE: exactlyOnce ? '1' : '0', ...env },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const restored = new Map<number, number>();
  const checkpoints = new Map<number, number>();
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: WorkerMessage) => {
      if (m === 'ready') resolve();
      else if (m.kind === 'restored') restored.set(m.partition, m.restored!);
      else checkpoints.set(m.partition, m.offset!);
    });
    void exited.then((code) => reject(new Error(`the worker exited (${code}) before it was ready`)));
  });
  ready.catch(() => undefined);
  return { child, exited, ready, restored, checkpoints };
}

/** How far a counting app got, read through `admin`. */
export interface CountingProgress {
  /** The sum of the group's committed offsets over the input's partitions. */
  committed(): Promise<number>;
  /**
   * The sum of the changelog's end offsets: one entry per record (and, under exactly-once, a transaction
   * marker per transaction), so it moves ahead of the committed offsets, which lag and under exactly-once
   * move a transaction at a time.
   */
  written(): Promise<number>;
  /** Waits until every one of `total` records is committed; a stall names each partition's committed offset and changelog end. */
  allCommitted(total: number, timeoutMs: number): Promise<void>;
}

export function countingProgress(admin: TransportAdmin, id: string, input: string, changelog: string): CountingProgress {
  const committed = async () => (await admin.committedOffsets(id, input)).reduce((sum, o) => sum + Number(o.offset), 0);
  const written = async () =>
    (await admin.listTopics()).includes(changelog) ? (await admin.endOffsets(changelog)).reduce((sum, o) => sum + Number(o.offset), 0) : 0;
  return {
    committed,
    written,
    async allCommitted(total, timeoutMs) {
      try {
        await waitUntil(async () => (await committed()) === total, 'every record committed', timeoutMs);
      } catch (error) {
        const offsets = (await admin.committedOffsets(id, input)).map((o) => `${o.partition}:${o.offset}`).join(' ');
        const ends = (await admin.endOffsets(changelog)).map((o) => `${o.partition}:${o.offset}`).join(' ');
        throw new Error(`${(error as Error).message} (committed ${offsets}; changelog ends ${ends})`, { cause: error });
      }
    },
  };
}

/**
 * The table its changelog holds (last value per key), read back through the kafkajs transport's restore read
 * (the reference, whichever client the app ran on). Each entry must count one more record of its key than the
 * one before: the first that do not are pushed to `breaks`, naming where state went wrong.
 */
export async function changelogTable(changelog: string, partitions: number, breaks: string[] = []): Promise<Map<string, number>> {
  const transport = new KafkaTransport({ brokers, clientId: 'tables-test', logLevel: 'nothing' });
  const admin = transport.admin();
  await admin.connect();
  const ends = await admin.endOffsets(changelog);
  await admin.disconnect();
  const table = new Map<string, number>();
  for (let partition = 0; partition < partitions; partition++) {
    const end = Number(ends.find((o) => o.partition === partition)?.offset ?? 0);
    if (end === 0) continue;
    await transport.readPartition({
      topic: changelog,
      partition,
      end,
      signal: new AbortController().signal,
      onMessages: (messages) => {
        for (const m of messages) {
          const previous = table.get(m.key!.toString()) ?? 0;
          const value = m.value === null ? 0 : (JSON.parse(m.value.toString()) as number);
          if (value !== previous + 1 && breaks.length < 5) {
            breaks.push(`${partition}@${m.offset} (source ${m.headers[SOURCE_OFFSET_HEADER]?.toString()}): ${m.key!.toString()} ${previous} -> ${value}`);
          }
          if (m.value === null) table.delete(m.key!.toString());
          else table.set(m.key!.toString(), value);
        }
      },
    });
  }
  return table;
}

/** The keys whose count in the changelog differs from `expected`, and the first entries that broke the count. */
export async function wrongCounts(
  changelog: string,
  partitions: number,
  expected: ReadonlyMap<string, number>,
): Promise<{ wrong: string[]; breaks: string[]; size: number }> {
  const breaks: string[] = [];
  const actual = await changelogTable(changelog, partitions, breaks);
  const wrong = [...expected].filter(([k, n]) => actual.get(k) !== n).map(([k, n]) => `${k}: ${actual.get(k)} not ${n}`);
  return { wrong: wrong.slice(0, 20), breaks, size: actual.size };
}
