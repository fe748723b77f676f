import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName } from '@stream/local-stack';
import { createApp, deadLetterTopicName, defineTopic, silentLogger, DEAD_LETTER_HEADERS } from '../src/index.js';
import { kafkaClients } from './fixtures.js';

const brokers = [...localServers().kafkaBrokers];
const topics: string[] = [];
const Item = z.object({ n: z.number().int() });

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type WireHeaders = Record<string, Buffer | null | (Buffer | null)[]>;

// The hostile records are written with kafkajs (testKafka) for both clients: the client under test is the app's,
// which reads them and writes the dead letters.
describe.each(kafkaClients)('hostile headers on the real Kafka (#16 findings 1, 2, 5) (%s)', (client) => {
  beforeAll(async () => {
    await requireServers('kafka');
  });
  afterAll(async () => {
    await deleteTopics(topics);
  });

  it('processes records with null values and prototype names, dead-letters one with 10,000 headers at once, and commits to the end', async () => {
    const name = uniqueName('hostile-headers');
    topics.push(name, deadLetterTopicName(name));
    const topic = defineTopic({ name, key: z.string(), value: Item, partitions: 1 });
    await createTopics([{ name, partitions: 1 }]);
    const hostile = Object.create(null) as WireHeaders;
    hostile['no-value'] = null;
    hostile['__proto__'] = Buffer.from('proto');
    hostile['constructor'] = Buffer.from('ctor');
    const many = Object.create(null) as WireHeaders;
    for (let i = 0; i < 10_000; i += 1) many[`h${i}`] = Buffer.from('x');
    const producer = testKafka().producer();
    await producer.connect();
    // kafkajs' types leave out null header values; the patched encoder writes them as Kafka's "no value".
    await producer.send({
      topic: name,
      messages: [
        { key: 'a', value: JSON.stringify({ n: 0 }), headers: hostile as never },
        { key: 'a', value: JSON.stringify({ n: 1 }), headers: many as never },
        { key: 'a', value: JSON.stringify({ n: 2 }), headers: { ...hostile, reject: Buffer.from('yes') } },
        { key: 'a', value: JSON.stringify({ n: 3 }) },
      ],
    });
    await producer.disconnect();

    const seen: { n: number; headers: Record<string, string> }[] = [];
    const app = createApp({ id: uniqueName('hostile-app'), brokers, transport: client, logger: silentLogger(), commitIntervalMs: 100 });
    app.agent(topic, { retry: { attempts: 2, backoff: { initialMs: 10, maxMs: 20 } } }, async (v, ctx) => {
      if (ctx.headers['reject'] === 'yes') throw new Error('rejected by the handler');
      seen.push({ n: v.n, headers: { ...ctx.headers } });
    });
    await app.start();
    await until(() => seen.length === 2 && app.health().lag.every((l) => l.lag === 0), 30_000, 'two records processed and everything committed');
    await app.stop();
    expect(seen.map((s) => s.n)).toEqual([0, 3]);
    expect(seen[0]!.headers).toEqual({ ['__proto__']: 'proto', constructor: 'ctor' });

    const letters: { n: number; headers: WireHeaders }[] = [];
    const reader = testKafka().consumer({ groupId: uniqueName('dlq-reader') });
    await reader.connect();
    await reader.subscribe({ topic: deadLetterTopicName(name), fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) =>
        void letters.push({ n: (JSON.parse(message.value!.toString()) as { n: number }).n, headers: message.headers as WireHeaders }),
    });
    await until(() => letters.length >= 2, 20_000, 'the dead letters');
    await new Promise((r) => setTimeout(r, 500));
    await reader.disconnect();
    expect(letters.map((l) => l.n)).toEqual([1, 2]);
    const [tooMany, rejected] = letters;
    expect(String(tooMany!.headers[DEAD_LETTER_HEADERS.errorMessage])).toMatch(/10000 headers, over the limit of 1000/);
    expect(tooMany!.headers['h9999']).toEqual(Buffer.from('x'));
    expect(rejected!.headers['no-value']).toBeNull();
    expect(rejected!.headers['__proto__']).toEqual(Buffer.from('proto'));
    expect(String(rejected!.headers[DEAD_LETTER_HEADERS.errorMessage])).toBe('rejected by the handler');
  }, 60_000);
});
