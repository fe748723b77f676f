// Measures what a record that never finishes costs in memory: one partition, its first record's handler
// never returns, `RECORDS` records of `VALUE_BYTES` behind it (each with a 256-byte header), on the memory
// transport, at-least-once or exactly-once (one output of the same size per record). Prints how many records
// started behind the stuck one, what the partition holds, and the peak RSS above the baseline taken once
// the broker holds every record (the broker's own copy is in the baseline, not in the delta).
//
//   pnpm --filter @stream/core build && node packages/core/scripts/stuck-record-rss.mjs [records] [valueBytes] [eos|alo]
import { defineTopic, stringCodec } from '../dist/index.js';
import { createTestApp, MemoryBroker, MemoryTransport } from '../dist/testing/index.js';
import { z } from 'zod';

const RECORDS = Number(process.argv[2] ?? 100_000);
const VALUE_BYTES = Number(process.argv[3] ?? 1024);
const EXACTLY_ONCE = (process.argv[4] ?? 'eos') === 'eos';
const MAX_RECORDS = 1000;

const input = defineTopic({ name: 'rss-in', key: z.string(), value: z.string(), codec: stringCodec, partitions: 1 });
const output = defineTopic({ name: 'rss-out', key: z.string(), value: z.string(), codec: stringCodec, partitions: 1 });
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const broker = new MemoryBroker();
const transport = new MemoryTransport(broker);
const admin = transport.admin();
await admin.connect();
await admin.createTopics([
  { name: input.name, partitions: 1 },
  { name: output.name, partitions: 1 },
]);
const producer = transport.producer();
await producer.connect();
const pad = 'x'.repeat(VALUE_BYTES);
const header = Buffer.alloc(256, 'h');
for (let i = 0; i < RECORDS; i += 1000) {
  const batch = [];
  for (let j = i; j < Math.min(RECORDS, i + 1000); j++) {
    batch.push({
      topic: input.name,
      partition: 0,
      key: Buffer.from(j === 0 ? 'stuck' : `k${j}`),
      value: Buffer.from(pad),
      headers: Object.assign(Object.create(null), { h: header }),
    });
  }
  await producer.send(batch);
}
await producer.disconnect();

globalThis.gc?.();
await delay(200);
globalThis.gc?.();
const baseline = process.memoryUsage().rss;
let peak = baseline;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);

let started = 0;
let release;
const stuck = new Promise((resolve) => (release = resolve));
const h = await createTestApp({ id: 'rss', broker, buffer: { maxRecords: MAX_RECORDS }, commitIntervalMs: 1000, outputs: [output] }, (app) =>
  app.agent(input, { concurrency: 32, exactlyOnce: EXACTLY_ONCE }, async (value, ctx) => {
    started += 1;
    if (ctx.key === 'stuck') await stuck;
    if (EXACTLY_ONCE) await ctx.send(output, { key: ctx.key, value });
  }),
);
// Until nothing more starts for a second (or everything started).
let last = -1;
while (started !== last && started < RECORDS) {
  last = started;
  await delay(1000);
}
globalThis.gc?.();
await delay(100);
peak = Math.max(peak, process.memoryUsage().rss);
const health = h.app.health();
const partition = health.partitions?.[0];
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);
console.log(
  JSON.stringify({
    mode: EXACTLY_ONCE ? 'exactly-once' : 'at-least-once',
    records: RECORDS,
    valueBytes: VALUE_BYTES,
    maxRecords: MAX_RECORDS,
    startedBehindStuck: started - 1,
    heldRecords: partition?.heldRecords ?? 'n/a (old runtime)',
    heldMiB: partition ? Number(mib(partition.heldBytes)) : 'n/a (old runtime)',
    paused: partition?.paused ?? 'n/a (old runtime)',
    baselineRssMiB: Number(mib(baseline)),
    peakRssAboveBaselineMiB: Number(mib(peak - baseline)),
  }),
);
clearInterval(sampler);
release();
await h.settle(120_000);
await h.stop();
