import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName, waitUntil } from '@stream/local-stack';
import { createApp, defineTopic, silentLogger, StreamError, type Transport, type TransportProducer } from '../src/index.js';
import { kafkaClients, kafkaTransport } from './fixtures.js';

const brokers = [...localServers().kafkaBrokers];
const topics: string[] = [];
const Item = z.object({ n: z.number().int() });

/**
 * `inner`, except that the first `losses` transaction commits of its transactional producers reach the
 * broker and commit there, but then fail to the caller, as when EndTxn's answer is lost to a timeout.
 */
function losingCommitAnswers(inner: Transport, losses: number): { transport: Transport; lost: () => number } {
  let lost = 0;
  const wrap = (producer: TransportProducer): TransportProducer => ({
    connect: () => producer.connect(),
    send: (messages) => producer.send(messages),
    disconnect: () => producer.disconnect(),
    transaction: async () => {
      const tx = await producer.transaction();
      return {
        send: (messages) => tx.send(messages),
        sendOffsets: (groupId, offsets) => tx.sendOffsets(groupId, offsets),
        abort: () => tx.abort(),
        commit: async () => {
          await tx.commit();
          if (lost >= losses) return;
          lost += 1;
          throw new StreamError('TRANSPORT_FAILED', 'commit failed: Request EndTxn timed out (injected after the broker committed)');
        },
      };
    },
  });
  const transport: Transport = {
    name: inner.name,
    consumer: (options) => inner.consumer(options),
    admin: () => inner.admin(),
    producer: (options) => (options?.transactionalId === undefined ? inner.producer(options) : wrap(inner.producer(options))),
  };
  return { transport, lost: () => lost };
}

describe.each(kafkaClients)('exactly-once on the real Kafka when a commit answer is lost (%s)', (client) => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics));

  it('publishes each output once although the runtime saw the commits that the broker made fail', async () => {
    const input = uniqueName('eos-lost-in');
    const output = uniqueName('eos-lost-out');
    const groupId = uniqueName('eos-lost');
    topics.push(
      ...(await createTopics([
        { name: input, partitions: 1 },
        { name: output, partitions: 1 },
      ])),
    );
    const total = 30;
    const producer = testKafka().producer();
    await producer.connect();
    await producer.send({ topic: input, messages: Array.from({ length: total }, (_, n) => ({ key: `k${n}`, value: JSON.stringify({ n }) })) });

    const kafka = kafkaTransport(client, { brokers, clientId: 'eos-lost-answer' });
    const faulty = losingCommitAnswers(kafka, 1);
    const inputTopic = defineTopic({ name: input, key: z.string(), value: Item, partitions: 1 });
    const outputTopic = defineTopic({ name: output, key: z.string(), value: Item, partitions: 1 });
    const app = createApp({ id: groupId, transport: faulty.transport, logger: silentLogger(), commitIntervalMs: 50 });
    // Slow enough that the records spread over several transactions, so that the lost answers hit some of them.
    app.agent(inputTopic, { exactlyOnce: true, concurrency: 1 }, async (v, ctx) => {
      await new Promise((r) => setTimeout(r, 5));
      await ctx.send(outputTopic, { key: `k${v.n}`, value: { n: v.n } });
    });
    const admin = kafka.admin();
    await admin.connect();
    await app.start();
    try {
      await waitUntil(async () => (await admin.committedOffsets(groupId, input)).some((o) => o.offset === String(total)), 'every input committed', 60_000);
    } finally {
      await app.stop();
      await admin.disconnect();
    }
    expect(faulty.lost()).toBe(1);

    // A plain record written after the app stopped: once a read-committed reader sees it, it has seen every output.
    const sentinel = -1;
    await producer.send({ topic: output, messages: [{ key: 'end', value: JSON.stringify({ n: sentinel }) }] });
    await producer.disconnect();
    const seen: number[] = [];
    const reader = testKafka().consumer({ groupId: uniqueName('eos-lost-reader'), readUncommitted: false });
    await reader.connect();
    await reader.subscribe({ topic: output, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => void seen.push((JSON.parse(message.value!.toString()) as { n: number }).n),
    });
    try {
      await waitUntil(() => seen.includes(sentinel), 'the sentinel', 30_000);
    } finally {
      await reader.disconnect();
    }
    expect(seen.filter((n) => n !== sentinel)).toEqual(Array.from({ length: total }, (_, n) => n));
  }, 120_000);
});
