// A worker process for the table integration tests: one instance of a counting app (a table of counts per
// key) over `input`. Arguments: brokers appId input. EXACTLY_ONCE=1 turns exactly-once on; KAFKA_CLIENT picks the
// Kafka client (kafkajs, platformatic); STATE_DIR keeps the
// table in a local store there too. With an IPC channel it reports each table partition's restore (entries read
// from the changelog, loaded from the local store) and checkpoint to its parent.
import { createApp, createLogger, defineTopic, silentLogger } from '@stream/core';
import { z } from 'zod';

const [brokers, appId, input] = process.argv.slice(2);
// WORKER_DELAY_MS: each record waits this long (so that a kill lands mid-way); WORKER_CONCURRENCY: records
// at once (each partition still runs in offset order), so the delay paces each partition, not the worker.
const delayMs = Number(process.env.WORKER_DELAY_MS ?? '0');
const concurrency = Number(process.env.WORKER_CONCURRENCY ?? '1');
const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number().int() }) });
const report = process.send ? (message) => process.send(message) : () => undefined;
const noop = () => undefined;
const instrumentation = {
  ...Object.fromEntries(['processed', 'failed', 'retried', 'deadLettered', 'inFlight', 'committed', 'fetched', 'revoked', 'dependency'].map((m) => [m, noop])),
  restoring: (table, partition, lag, restored) => {
    if (lag === 0) report({ kind: 'restored', table, partition, restored });
  },
  checkpointed: (table, partition, offset) => report({ kind: 'checkpointed', table, partition, offset }),
};
const app = createApp({
  id: appId,
  instrumentation,
  ...(process.env.STATE_DIR ? { stateDir: process.env.STATE_DIR } : {}),
  brokers: brokers.split(','),
  // KAFKA_CLIENT=platformatic runs the worker on the @platformatic/kafka transport (default kafkajs).
  transport: process.env.KAFKA_CLIENT === 'platformatic' ? 'platformatic' : 'kafkajs',
  // WORKER_LOG_LEVEL=info writes the app's log to stderr (the test shows it only when told to).
  logger: process.env.WORKER_LOG_LEVEL ? createLogger({ name: appId, level: process.env.WORKER_LOG_LEVEL, destination: process.stderr }) : silentLogger(),
  commitIntervalMs: 200,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 500,
});
const counts = app.table('counts', { key: z.string(), value: z.number().int(), default: 0 });
app.agent(topic, { tables: [counts], exactlyOnce: process.env.EXACTLY_ONCE === '1', concurrency }, async (_value, ctx) => {
  if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  const table = ctx.table(counts);
  table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
});
// Tells the test (over IPC) once the app is ready, joined and restored: a SIGTERM before `app.run()`
// listens for it would end the process at once, where the test means a graceful stop.
const readiness = setInterval(() => {
  if (!app.ready) return;
  clearInterval(readiness);
  process.send?.('ready');
}, 20);
await app.run();
clearInterval(readiness);
