// Measures what an idle kafkajs client costs: a connected producer and admin, and a consumer in a group
// with nothing to read, for a few seconds. Prints CPU ms per second of wall time and how many timers
// fired (kafkajs' request queue re-armed a 1 ms timer per connection forever, kafkajs #1704/#1751).
// Usage: node packages/core/scripts/kafkajs-idle-cpu.mjs [seconds] (a broker on 127.0.0.1:9092)
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');
const seconds = Number(process.argv[2] ?? '5');
const kafka = new Kafka({ clientId: 'idle-cpu', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
const topic = `idle-cpu-${randomUUID()}`;
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
const producer = kafka.producer();
await producer.connect();
await producer.send({ topic, messages: [{ value: 'x' }] });
const consumer = kafka.consumer({ groupId: `idle-cpu-${randomUUID()}` });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
let got = 0;
await consumer.run({ eachMessage: async () => void (got += 1) });
while (got === 0) await new Promise((r) => setTimeout(r, 50));

let timers = 0;
const original = globalThis.setTimeout;
globalThis.setTimeout = (fn, ms, ...rest) => {
  timers += 1;
  return original(fn, ms, ...rest);
};
const before = process.cpuUsage();
const started = performance.now();
await new Promise((r) => original(r, seconds * 1000));
const cpu = process.cpuUsage(before);
const wall = (performance.now() - started) / 1000;
globalThis.setTimeout = original;
console.log(
  JSON.stringify({
    seconds: Math.round(wall * 10) / 10,
    cpuMsPerSecond: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 10) / 10,
    timersPerSecond: Math.round(timers / wall),
  }),
);
await consumer.disconnect();
await producer.disconnect();
await admin.deleteTopics({ topics: [topic] });
await admin.disconnect();
