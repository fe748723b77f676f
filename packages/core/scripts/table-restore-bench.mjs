// Measures a table's restore on Kafka with the persistent local store (`stateDir`) against the memory store,
// over the same changelog: `ENTRIES` changelog entries of `KEYS` keys over `PARTITIONS` partitions (written
// straight to the changelog, as a counting app would have: JSON counts, the source-offset header), on a fresh
// topic, group and temp dir. Runs, each one app start until every partition is restored:
//   1. memory store: reads the whole changelog;
//   2. persistent store, empty: reads the whole changelog and writes it to LMDB (then a clean stop checkpoints it);
//   3. persistent store, restart: loads LMDB and reads the changelog from its checkpoint (nothing new: 0 entries);
//   4. memory store again (a second sample of 1);
//   5. persistent store, restart after ENTRIES / 10 more entries were appended: loads LMDB, reads only those.
// Prints per run the entries read from the changelog, the entries loaded from LMDB, the restore time (first
// partition's restore start to last partition's end, so the group join is left out), entries/s, and the
// start-to-ready time. Needs a broker on 127.0.0.1:9092 (BROKERS to change); deletes its topics at the end.
// KAFKA_CLIENT=platformatic runs the apps on the @platformatic/kafka transport (default kafkajs); the changelog
// is written with kafkajs either way.
//
//   pnpm turbo run build --filter @stream/core && node packages/core/scripts/table-restore-bench.mjs [entries] [keys] [partitions]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { z } from 'zod';
import { changelogTopicName, createApp, defineTopic, silentLogger } from '../dist/index.js';

const ENTRIES = Number(process.argv[2] ?? 200_000);
const KEYS = Number(process.argv[3] ?? 50_000);
const PARTITIONS = Number(process.argv[4] ?? 6);
const TAIL = Math.round(ENTRIES / 10);
const brokers = (process.env.BROKERS ?? '127.0.0.1:9092').split(',');
const client = process.env.KAFKA_CLIENT ?? 'kafkajs';
const run = `${Date.now()}-${process.pid}`;
const input = `restore-bench-in-${run}`;
const group = `restore-bench-${run}`;
const changelog = changelogTopicName(group, 'counts');
const stateDir = mkdtempSync(join(tmpdir(), 'restore-bench-'));

const kafka = new Kafka({ brokers, clientId: 'restore-bench', logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({
  waitForLeaders: true,
  topics: [
    { topic: input, numPartitions: PARTITIONS },
    { topic: changelog, numPartitions: PARTITIONS, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
  ],
});
// kafkajs' default partitioner is Java's murmur2, as the table's: each key lands in its table partition.
const producer = kafka.producer();
await producer.connect();
const counts = new Map();
const BATCH = 5_000;
async function append(from, to) {
  for (let i = from; i < to; i += BATCH) {
    const messages = [];
    for (let j = i; j < Math.min(to, i + BATCH); j++) {
      const key = `key-${(j * 7919) % KEYS}`;
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      messages.push({ key, value: JSON.stringify(n), headers: { 'stream-source-offset': String(j) } });
    }
    await producer.send({ topic: changelog, messages });
  }
}
await append(0, ENTRIES);

async function restore(label, withStore) {
  const marks = { first: undefined, last: 0, read: new Map() };
  const noop = () => undefined;
  const instrumentation = {
    ...Object.fromEntries(
      ['processed', 'failed', 'retried', 'deadLettered', 'inFlight', 'committed', 'fetched', 'revoked', 'dependency'].map((m) => [m, noop]),
    ),
    restoring: (_table, partition, lag, restored) => {
      marks.first ??= performance.now();
      marks.read.set(partition, restored);
      if (lag === 0) marks.last = performance.now();
    },
  };
  let loaded = 0;
  const logger = silentLogger();
  // The runtime logs each partition's restore with the entries loaded from the local store.
  const counting = new Proxy(logger, {
    get(target, prop) {
      if (prop === 'child') return () => counting;
      if (prop === 'info')
        return (obj, msg) => {
          if (msg === 'table partition restored') loaded += obj.loaded ?? 0;
        };
      return target[prop];
    },
  });
  const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number() }) });
  const app = createApp({ id: group, brokers, transport: client, logger: counting, instrumentation, ...(withStore ? { stateDir } : {}) });
  const table = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
  app.agent(topic, { tables: [table] }, async (_v, ctx) => {
    ctx.table(table).set(ctx.key, (ctx.table(table).get(ctx.key) ?? 0) + 1);
  });
  const started = performance.now();
  await app.start();
  while (!app.ready) await new Promise((resolve) => setTimeout(resolve, 5));
  const ready = performance.now() - started;
  await app.stop();
  const read = [...marks.read.values()].reduce((a, b) => a + b, 0);
  const ms = marks.last - marks.first;
  const rate = Math.round(((read + loaded) / ms) * 1000);
  console.log(
    `${label.padEnd(34)} read ${String(read).padStart(7)}  loaded ${String(loaded).padStart(7)}  restore ${ms.toFixed(0).padStart(6)} ms  ${String(rate).padStart(9)} entries/s  start-to-ready ${ready.toFixed(0)} ms`,
  );
}

console.log(`changelog: ${ENTRIES} entries, ${KEYS} keys, ${PARTITIONS} partitions; client ${client}`);
try {
  await restore('memory store', false);
  await restore('persistent store, empty (builds it)', true);
  await restore('persistent store, restart', true);
  await restore('memory store, again', false);
  // Another owner wrote a tail since the checkpoint: the restart loads LMDB and reads only the tail.
  await append(ENTRIES, ENTRIES + TAIL);
  await restore(`persistent store, ${TAIL} new entries`, true);
} finally {
  await producer.disconnect();
  await admin.deleteTopics({ topics: [input, changelog] }).catch(() => undefined);
  await admin.deleteGroups([group]).catch(() => undefined);
  await admin.disconnect();
  rmSync(stateDir, { recursive: true, force: true });
}
