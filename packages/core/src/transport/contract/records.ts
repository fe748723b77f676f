import { describe, expect, it } from 'vitest';
import { emptyRawHeaders, type OutgoingMessage } from '../transport.js';
import { contractTest, record, tp, type ContractContext } from './contract-context.js';
import type { AcceptedRecord } from './consumer-probe.js';
import type { TransportFactory } from './transport-under-test.js';

/** Every byte value once: not valid UTF-8, so any text round trip would change it. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** Sends `messages` to partition 0 of a fresh topic and returns them as a consumer accepted them. */
async function roundTrip(c: ContractContext, prefix: string, messages: (topic: string) => OutgoingMessage[]): Promise<AcceptedRecord[]> {
  const topic = await c.topic(prefix, 1);
  const sent = messages(topic).map((m) => ({ ...m, partition: 0 }));
  await c.send(sent);
  const { probe } = await c.member(c.name(`${prefix}-group`), [topic]);
  await c.until(() => probe.accepted.length >= sent.length, `${sent.length} records`);
  return probe.accepted;
}

/**
 * Keys, values and headers arrive byte for byte; a null key or value (a tombstone) stays null and is
 * not confused with an empty one. The codecs and the dead-letter headers rely on this.
 */
export function describeRecords(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('records', () => {
    test('round-trips null and empty keys and values: tombstones stay null, empty stays empty', async (c) => {
      const received = await roundTrip(c, 'tombstones', (topic) => [
        record(topic, null, { key: 'deleted' }),
        record(topic, null, { key: null }),
        record(topic, '', { key: Buffer.alloc(0) }),
        { topic, key: ALL_BYTES, value: ALL_BYTES, headers: {} },
      ]);
      expect(received.map((m) => [m.key, m.value])).toEqual([
        [Buffer.from('deleted'), null],
        [null, null],
        [Buffer.alloc(0), Buffer.alloc(0)],
        [ALL_BYTES, ALL_BYTES],
      ]);
      expect(received.map((m) => m.offset)).toEqual(['0', '1', '2', '3']);
      for (const m of received) expect(Number(m.timestamp)).toBeGreaterThan(0);
    });

    test('round-trips headers byte for byte: empty and binary values, many of them, case-distinct names', async (c) => {
      const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`h-${i}`, Buffer.from(`value-${i}`)]));
      const headers = {
        ...many,
        empty: Buffer.alloc(0),
        binary: ALL_BYTES,
        trace: Buffer.from('lower'),
        Trace: Buffer.from('upper'),
        constructor: Buffer.from('not a function'),
        'ключ-🔑': Buffer.from('unicode name'),
      };
      const [received] = await roundTrip(c, 'headers', (topic) => [record(topic, 'v', { headers })]);
      expect(Object.keys(received?.headers ?? {}).sort()).toEqual(Object.keys(headers).sort());
      for (const [name, value] of Object.entries(headers)) expect(received?.headers[name], `header ${name}`).toEqual(value);
      expect(Buffer.isBuffer(received?.headers.empty)).toBe(true);
    });

    // Header names are data: a header named like an Object.prototype member is an ordinary entry on
    // every transport, in an object without a prototype, and no other header is lost around it.
    test('delivers headers named __proto__, constructor and toString as ordinary headers', async (c) => {
      const headers = emptyRawHeaders();
      headers.before = Buffer.from('b');
      headers['__proto__'] = Buffer.from('proto');
      headers['constructor'] = Buffer.from('ctor');
      headers['toString'] = Buffer.from('ts');
      headers.after = Buffer.from('a');
      const [received] = await roundTrip(c, 'proto-header', (topic) => [record(topic, 'v', { headers })]);
      const got = received?.headers ?? emptyRawHeaders();
      expect(Object.getPrototypeOf(got)).toBe(null);
      const entries = Object.entries(got).map(([name, value]) => [name, value?.toString()]);
      expect(entries.sort()).toEqual([
        ['__proto__', 'proto'],
        ['after', 'a'],
        ['before', 'b'],
        ['constructor', 'ctor'],
        ['toString', 'ts'],
      ]);
    });

    // Kafka allows a header without a value (length -1 on the wire): it arrives as null, next to an
    // empty value, which stays an empty buffer.
    test('delivers a header without a value as null, distinct from an empty value', async (c) => {
      const headers = emptyRawHeaders();
      headers.none = null;
      headers.empty = Buffer.alloc(0);
      const [received] = await roundTrip(c, 'null-header', (topic) => [record(topic, 'v', { headers })]);
      expect(received?.headers.none).toBe(null);
      expect(Object.keys(received?.headers ?? {}).sort()).toEqual(['empty', 'none']);
      expect(received?.headers.empty).toEqual(Buffer.alloc(0));
    });

    test('delivers header values byte for byte, including bytes that are not UTF-8', async (c) => {
      const headers = emptyRawHeaders();
      headers['bin'] = Buffer.from([0xff, 0xfe, 0x00, 0xc3]);
      headers['ключ'] = Buffer.from('значение');
      const [received] = await roundTrip(c, 'binary-header', (topic) => [record(topic, 'v', { headers })]);
      expect(received?.headers.bin).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0xc3]));
      expect(received?.headers['ключ']).toEqual(Buffer.from('значение'));
    });

    it.skip('repeated header names (RawHeaders holds one value per name; both transports keep the last on receive)', () => undefined);

    test('routes a key to the same partition on every transport (murmur2, like the Java client)', async (c) => {
      const topic = await c.topic('routing', 4);
      const keys = Array.from({ length: 12 }, (_, i) => `order-${i}`);
      await c.send(keys.map((key) => record(topic, key, { key })));
      const { probe } = await c.member(c.name('routing-group'), [topic]);
      await c.until(() => probe.accepted.length >= keys.length, 'every keyed record');
      const partitionOf: Record<string, number> = {};
      for (const m of probe.accepted) partitionOf[m.key?.toString() ?? '<null key>'] = m.partition;
      expect(partitionOf).toEqual(ROUTED_PARTITIONS);
      for (const partition of [0, 1, 2, 3])
        expect(probe.of(tp(topic, partition)).map((m) => m.value?.toString())).toEqual(keys.filter((k) => ROUTED_PARTITIONS[k] === partition));
    });
  });
}

/** Where Kafka's default partitioner (kafkajs DefaultPartitioner, the Java client's) puts `order-0`…`order-11` on 4 partitions. */
const ROUTED_PARTITIONS: Readonly<Record<string, number>> = {
  'order-0': 0,
  'order-1': 2,
  'order-2': 3,
  'order-3': 3,
  'order-4': 2,
  'order-5': 2,
  'order-6': 1,
  'order-7': 1,
  'order-8': 1,
  'order-9': 2,
  'order-10': 2,
  'order-11': 2,
};
