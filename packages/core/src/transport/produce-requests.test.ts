import { describe, expect, it } from 'vitest';
import { produceRequests } from './produce-requests.js';
import type { OutgoingMessage } from './transport.js';

const message = (bytes: number, key = 'k'): OutgoingMessage => ({
  topic: 'orders.dlq',
  key: Buffer.from(key),
  value: Buffer.alloc(bytes),
  headers: { 'dlq.source.topic': Buffer.from('orders') },
});

describe('produceRequests', () => {
  it('keeps small batches in one request, unchanged', () => {
    const messages = Array.from({ length: 100 }, () => message(100));
    const groups = produceRequests(messages);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toBe(messages);
  });

  it('never puts two records of about 1 MB in one request (the broker would refuse the batch forever)', () => {
    const messages = [message(10), message(1_000_000, 'a'), message(1_000_000, 'b'), message(10)];
    const groups = produceRequests(messages);
    expect(groups.map((g) => g.length)).toEqual([1, 1, 1, 1]);
    expect(groups.every((g) => g.filter((m) => (m.value?.length ?? 0) > 500_000).length <= 1)).toBe(true);
    expect(groups.flat()).toEqual(messages);
  });

  it('splits by the running size, in order', () => {
    const messages = Array.from({ length: 10 }, (_, i) => message(300_000, `k${i}`));
    const groups = produceRequests(messages, 512 * 1024);
    expect(groups.every((g) => g.length === 1)).toBe(true);
    expect(groups.flat().map((m) => m.key?.toString())).toEqual(messages.map((m) => m.key?.toString()));
  });
});
