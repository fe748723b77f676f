import { DEAD_LETTER_HEADERS, deadLetterTopicName, KafkaTransport, defineTopic, silentLogger } from '@stream/core';
import { deleteTopics, localServers, requireServers, testKafka, uniqueName } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopicsCommand, dlqListCommand, dlqReplayCommand, sendCommand, tailCommand } from './commands.js';

const transport = new KafkaTransport({ brokers: [...localServers().kafkaBrokers], clientId: 'cli-test', logger: silentLogger() });
const name = uniqueName('cli-orders');
const topic = defineTopic({ name, key: z.string(), value: z.object({ id: z.string(), qty: z.number().int().positive() }), partitions: 2 });
const interleaved = uniqueName('cli-interleaved');
const interleavedTopic = defineTopic({
  name: interleaved,
  key: z.string(),
  value: z.object({ id: z.string(), qty: z.number().int().positive() }),
  partitions: 1,
});

describe('the stream CLI on the real Kafka', () => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics([name, deadLetterTopicName(name), interleaved, deadLetterTopicName(interleaved)]));

  it('topics create makes each topic and its dead-letter topic, and is idempotent', async () => {
    const first: string[] = [];
    await createTopicsCommand(transport, [topic], (l) => first.push(l));
    expect(first).toEqual([`created ${name} (2 partitions)`, `created ${name}.dlq (2 partitions)`]);
    const second: string[] = [];
    await createTopicsCommand(transport, [topic], (l) => second.push(l));
    expect(second).toEqual([`exists  ${name} (2 partitions)`, `exists  ${name}.dlq (2 partitions)`]);
  });

  it('send validates against the contract; tail prints decoded records', async () => {
    await expect(sendCommand(transport, [topic], { topic: name, json: '{"id":"o-1","qty":-3}', key: 'o-1' }, () => undefined)).rejects.toThrow(/value\.qty/);
    await expect(sendCommand(transport, [topic], { topic: name, json: '{"id":', key: 'o-1' }, () => undefined)).rejects.toThrow(/not valid JSON/);
    await expect(sendCommand(transport, [topic], { topic: 'nope', json: '{}' }, () => undefined)).rejects.toThrow(/no contract for topic nope/);
    const sent: string[] = [];
    await sendCommand(transport, [topic], { topic: name, json: '{"id":"o-1","qty":3}', key: 'o-1', headers: { origin: 'cli' } }, (l) => sent.push(l));
    expect(sent).toEqual([`sent to ${name} (key o-1)`]);
    const lines: string[] = [];
    const count = await tailCommand(transport, [topic], { topic: name, max: 1 }, (l) => lines.push(l));
    expect(count).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ key: 'o-1', value: { id: 'o-1', qty: 3 }, headers: { origin: 'cli' } });
  });

  it('dlq list shows failure headers; dlq replay sends letters back once, optionally filtered', async () => {
    const producer = testKafka().producer();
    await producer.connect();
    const letter = (id: string, error: string) => ({
      key: id,
      value: JSON.stringify({ id, qty: 1 }),
      headers: {
        trace: 't',
        [DEAD_LETTER_HEADERS.sourceTopic]: name,
        [DEAD_LETTER_HEADERS.partition]: '0',
        [DEAD_LETTER_HEADERS.offset]: '7',
        [DEAD_LETTER_HEADERS.errorClass]: 'Error',
        [DEAD_LETTER_HEADERS.errorMessage]: error,
        [DEAD_LETTER_HEADERS.attempts]: '3',
      },
    });
    await producer.send({ topic: deadLetterTopicName(name), messages: [letter('d-1', 'email API 503'), letter('d-2', 'bad address 400')] });
    await producer.disconnect();

    const listed: string[] = [];
    expect(await dlqListCommand(transport, { topic: name }, (l) => listed.push(l))).toBe(2);
    expect(listed.map((l) => JSON.parse(l) as { key: string; failure: Record<string, string> })).toEqual([
      expect.objectContaining({ key: 'd-1', failure: expect.objectContaining({ 'dlq.error.message': 'email API 503', 'dlq.attempts': '3' }) as unknown }),
      expect.objectContaining({ key: 'd-2' }),
    ]);

    const out: string[] = [];
    expect(await dlqReplayCommand(transport, { topic: name, match: /503/ }, (l) => out.push(l))).toMatchObject({ replayed: 1, skipped: 1 });
    // The letter --match skipped is still there for the next replay; after that, nothing is left.
    expect(await dlqReplayCommand(transport, { topic: name }, (l) => out.push(l))).toMatchObject({ replayed: 1, skipped: 0 });
    expect(await dlqReplayCommand(transport, { topic: name }, (l) => out.push(l))).toEqual({ replayed: 0, skipped: 0, readAgain: 0 });

    const lines: string[] = [];
    await tailCommand(transport, [topic], { topic: name, max: 3 }, (l) => lines.push(l));
    const replayed = lines.map((l) => JSON.parse(l) as { key: string; headers: Record<string, string> }).find((r) => r.key === 'd-1');
    expect(replayed?.headers).toEqual({ trace: 't' });
  });

  it('dlq replay --match leaves the letters it skips for a later replay, also when matching ones follow them', async () => {
    await createTopicsCommand(transport, [interleavedTopic], () => undefined);
    const producer = testKafka().producer();
    await producer.connect();
    const letter = (id: string, error: string) => ({
      key: id,
      value: JSON.stringify({ id, qty: 1 }),
      partition: 0,
      headers: { [DEAD_LETTER_HEADERS.sourceTopic]: interleaved, [DEAD_LETTER_HEADERS.errorMessage]: error },
    });
    await producer.send({
      topic: deadLetterTopicName(interleaved),
      messages: [letter('a-1', 'email API 503'), letter('b-1', 'bad address 400'), letter('a-2', 'email API 503'), letter('b-2', 'bad address 400')],
    });
    await producer.disconnect();

    const out: string[] = [];
    const filtered = await dlqReplayCommand(transport, { topic: interleaved, match: /503/ }, (l) => out.push(l));
    expect(filtered).toMatchObject({ replayed: 2, skipped: 2 });
    // Everything from the first skipped letter on is read again: both 400 letters are found.
    expect(await dlqReplayCommand(transport, { topic: interleaved }, (l) => out.push(l))).toMatchObject({ replayed: 3, skipped: 0 });
    expect(filtered.readAgain).toBe(1);
    expect(out[0]).toMatch(/skipped 2 not matching \(left for a later replay\), 1 replayed after a skipped one will be read again/);
    expect(await dlqReplayCommand(transport, { topic: interleaved }, (l) => out.push(l))).toEqual({ replayed: 0, skipped: 0, readAgain: 0 });

    const lines: string[] = [];
    await tailCommand(transport, [interleavedTopic], { topic: interleaved, max: 5 }, (l) => lines.push(l));
    expect(lines.map((l) => (JSON.parse(l) as { key: string }).key)).toEqual(['a-1', 'a-2', 'b-1', 'a-2', 'b-2']);
  });
});
