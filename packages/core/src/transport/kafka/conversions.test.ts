import type { IHeaders, KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { topicMessages, toRawMessage } from './conversions.js';

/** A fetched message: of a record batch when it has headers, else of a legacy message set (no headers at all). */
function fetched(headers: IHeaders | undefined): KafkaMessage {
  const base = { key: Buffer.from('k'), value: Buffer.from('v'), offset: '7', timestamp: '1700000000000', attributes: 0 };
  return headers ? { ...base, headers } : { ...base, size: 0 };
}

describe('kafkajs conversions', () => {
  it('gives a message without headers empty prototype-free headers, and keeps the last value of each header', () => {
    for (const none of [undefined, {}]) {
      const raw = toRawMessage(fetched(none));
      expect(Object.keys(raw.headers)).toEqual([]);
      expect(Object.getPrototypeOf(raw.headers)).toBeNull();
      expect(raw).toMatchObject({ offset: '7', timestamp: '1700000000000' });
    }
    const raw = toRawMessage(fetched({ a: 'x', b: [Buffer.from('1'), Buffer.from('2')], c: undefined }));
    expect(Object.getPrototypeOf(raw.headers)).toBeNull();
    expect(Object.keys(raw.headers)).toEqual(['a', 'b']);
    expect(raw.headers.a?.toString()).toBe('x');
    expect(raw.headers.b?.toString()).toBe('2');
  });

  it('groups messages per topic and names a partition only when the message has one', () => {
    const headers = Object.create(null) as Record<string, Buffer | null>;
    const grouped = topicMessages([
      { topic: 'a', key: null, value: Buffer.from('1'), headers },
      { topic: 'b', key: null, value: Buffer.from('2'), headers, partition: 3 },
      { topic: 'a', key: null, value: Buffer.from('3'), headers },
    ]);
    expect(grouped.map((t) => [t.topic, t.messages.length])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect('partition' in grouped[0]!.messages[0]!).toBe(false);
    expect(grouped[1]!.messages[0]!.partition).toBe(3);
  });
});
