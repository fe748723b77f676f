import { describe, expect, it } from 'vitest';
import { SharedProducer } from './producer.js';
import { MemoryBroker, MemoryTransport } from './testing/index.js';
import type { OutgoingMessage } from './transport/transport.js';

const message = (topic: string, n: number): OutgoingMessage => ({ topic, partition: 0, key: null, value: Buffer.from(String(n)), headers: {} });

describe('SharedProducer', () => {
  it('sends the messages of one call in one produce request, also when they pass the coalescing bound or others are pending', async () => {
    const broker = new MemoryBroker();
    broker.createTopic('out', 1);
    const transport = new MemoryTransport(broker);
    const requests: number[][] = [];
    const producer = transport.producer.bind(transport);
    transport.producer = () => {
      const p = producer();
      const send = p.send.bind(p);
      p.send = (messages) => {
        requests.push(messages.map((m) => Number(m.value!.toString())));
        return send(messages);
      };
      return p;
    };
    const shared = new SharedProducer(transport);
    const singles = Array.from({ length: 3000 }, (_, n) => shared.send([message('out', n)]));
    // 1,500 entries of one partition (a table's changelog entries): split over two requests in flight at
    // once, the second could land first.
    // The 3,000 singles and the group pass the 4,000 messages of one request.
    const group = shared.send(Array.from({ length: 1500 }, (_, n) => message('out', 10_000 + n)));
    await Promise.all([...singles, group]);
    expect(requests.find((r) => r.includes(10_000))).toEqual(Array.from({ length: 1500 }, (_, n) => 10_000 + n));
    expect(requests.flat()).toHaveLength(4500);
    await shared.close();
  });
});
