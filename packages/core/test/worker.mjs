// A worker process for the group integration tests: one app instance consuming `input` and writing one
// result per record to `output`. Arguments: brokers groupId input output name. Prints "ready" once it
// has joined its group.
import { createApp, createLogger, defineTopic, silentLogger } from '@stream/core';
import { z } from 'zod';

const [brokers, groupId, input, output, name] = process.argv.slice(2);
const inTopic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number().int() }) });
const outTopic = defineTopic({ name: output, key: z.string(), value: z.object({ n: z.number().int(), worker: z.string() }) });
const app = createApp({
  id: groupId,
  brokers: brokers.split(','),
  // KAFKA_CLIENT=platformatic runs the worker on the @platformatic/kafka transport (default kafkajs).
  transport: process.env.KAFKA_CLIENT === 'platformatic' ? 'platformatic' : 'kafkajs',
  // KAFKA_GROUP_PROTOCOL=consumer (with KAFKA_CLIENT=platformatic) joins with KIP-848.
  ...(process.env.KAFKA_GROUP_PROTOCOL ? { kafka: { groupProtocol: process.env.KAFKA_GROUP_PROTOCOL } } : {}),
  // WORKER_LOG_LEVEL=info writes the app's log to stderr (the tests ignore it unless told otherwise).
  logger: process.env.WORKER_LOG_LEVEL ? createLogger({ name, level: process.env.WORKER_LOG_LEVEL, destination: process.stderr }) : silentLogger(),
  commitIntervalMs: 200,
  shutdownTimeoutMs: 10_000,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 500,
  rebalanceTimeoutMs: 15_000,
  outputs: [outTopic],
});
const delayMs = Number(process.env.WORKER_DELAY_MS ?? '0');
app.agent(inTopic, { concurrency: 32, exactlyOnce: process.env.EXACTLY_ONCE === '1' }, async (value, ctx) => {
  if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  await ctx.send(outTopic, { key: ctx.key, value: { n: value.n, worker: name } });
});
const readyPoll = setInterval(() => {
  if (app.ready && app.health().joined) {
    clearInterval(readyPoll);
    process.stdout.write('ready\n');
  }
}, 50);
// WORKER_LEAK_HANDLE=1: a timer nobody clears, as a forgotten client would leave; the stop must still exit.
if (process.env.WORKER_LEAK_HANDLE === '1') setInterval(() => undefined, 1000);
await app.run();
clearInterval(readyPoll);
