import type { AnyTopic, RawMessage } from '@stream/core';
import { describe, expect, it } from 'vitest';
import { DATE_WINDOW, executionQuality, feedActivities, LIMITS, orders, searchQueries, topResults } from './index.js';

/** A record as a consumer reads it: raw JSON bytes, whatever the producer was. */
const consumed = (key: string, value: unknown): RawMessage => ({
  key: Buffer.from(key),
  value: Buffer.from(JSON.stringify(value)),
  headers: {},
  offset: '0',
  timestamp: '0',
});
const decode = (topic: AnyTopic, key: string, value: unknown) => topic.decode(consumed(key, value), { partition: 0 });
const decodeOrder = async (key: string, value: unknown) => (await orders.decode(consumed(key, value), { partition: 0 })).value;

const at = '2026-11-28T10:00:00.000Z';
const order = { id: 'o-1', userId: 'u-1', symbol: 'ACME', side: 'buy', quantity: 10, price: 101.5, executedAt: at };
const activity = { id: 'a-1', user: 'u-1', message: 'liked a thing', timestamp: at };
const query = { id: 'q-1', queryString: 'oak desk', userId: 'u-1', timestamp: at };
const report = {
  orderId: 'o-1',
  symbol: 'ACME',
  side: 'buy',
  quantity: 10,
  executedPrice: 101.5,
  marketPrice: 101,
  marketTime: at,
  slippageBps: 49.5,
  status: 'ok',
};
const result = { ...query, topResult: { id: 'doc-1', index: 'products', score: 1.5, source: {} }, tookMs: 3 };

const LONE = '\ud800';
const long = (n: number) => 'x'.repeat(n);
const [before, after] = [new Date(DATE_WINDOW.min.getTime() - 1).toISOString(), new Date(DATE_WINDOW.max.getTime() + 1).toISOString()];

type Case = readonly [label: string, topic: AnyTopic, key: string, value: unknown, field: RegExp];

/** Each of these passed the contracts before issue #16 and reached a service that could not handle it. */
const refused: Case[] = [
  [
    'an order executed in year 0000 (a negative year in Flux: InfluxDB 500)',
    orders,
    'o-1',
    { ...order, executedAt: '0000-01-01T00:00:00Z' },
    /value\.executedAt/,
  ],
  ['an order executed a millisecond before 1970', orders, 'o-1', { ...order, executedAt: before }, /value\.executedAt/],
  ['an order executed after 2262-04-11 (past int64 nanoseconds)', orders, 'o-1', { ...order, executedAt: after }, /value\.executedAt/],
  ['an order executed in 9999', orders, 'o-1', { ...order, executedAt: '9999-12-31T23:59:59Z' }, /value\.executedAt/],
  ['an order with an offset that puts it before 1970', orders, 'o-1', { ...order, executedAt: '1970-01-01T00:30:00+01:00' }, /value\.executedAt/],
  ['a price of 1e308', orders, 'o-1', { ...order, price: 1e308 }, /value\.price/],
  ['a price above the maximum', orders, 'o-1', { ...order, price: LIMITS.maxPrice * 2 }, /value\.price/],
  ['a quantity of Number.MAX_VALUE', orders, 'o-1', { ...order, quantity: Number.MAX_VALUE }, /value\.quantity/],
  ['a quantity above the maximum', orders, 'o-1', { ...order, quantity: LIMITS.maxQuantity + 1 }, /value\.quantity/],
  ['an order id with a lone surrogate', orders, 'o-1', { ...order, id: `o-${LONE}` }, /value\.id/],
  ['a user id with a lone surrogate', orders, 'o-1', { ...order, userId: `\udfff${LONE}` }, /value\.userId/],
  ['a symbol with a lone surrogate', orders, 'o-1', { ...order, symbol: LONE }, /value\.symbol/],
  ['an order key longer than an id', orders, long(LIMITS.idLength + 1), order, /invalid key/],
  ['an activity from year 0000', feedActivities, 'u-1', { ...activity, timestamp: '0000-01-01T00:00:00Z' }, /value\.timestamp/],
  ['an activity from after 2262-04-11', feedActivities, 'u-1', { ...activity, timestamp: after }, /value\.timestamp/],
  ['a feed message with a lone surrogate', feedActivities, 'u-1', { ...activity, message: `hi ${LONE}` }, /value\.message/],
  ['a feed user with a lone surrogate', feedActivities, 'u-1', { ...activity, user: LONE }, /value\.user/],
  ['a feed key longer than an id', feedActivities, long(LIMITS.idLength + 1), activity, /invalid key/],
  ['a query from before 1970', searchQueries, 'q-1', { ...query, timestamp: '1969-12-31T23:59:59Z' }, /value\.timestamp/],
  ['a query text with a lone surrogate', searchQueries, 'q-1', { ...query, queryString: `desk ${LONE}` }, /value\.queryString/],
  ['a query key longer than an id', searchQueries, long(LIMITS.idLength + 1), query, /invalid key/],
  ['a report with an order id longer than an id', executionQuality, 'o-1', { ...report, orderId: long(LIMITS.idLength + 1) }, /value\.orderId/],
  ['a report with a symbol longer than a symbol', executionQuality, 'o-1', { ...report, symbol: long(LIMITS.symbolLength + 1) }, /value\.symbol/],
  ['a report with a quantity of 1e300', executionQuality, 'o-1', { ...report, quantity: 1e300 }, /value\.quantity/],
  ['a report with a market time in year 0000', executionQuality, 'o-1', { ...report, marketTime: '0000-01-01T00:00:00Z' }, /value\.marketTime/],
  [
    'a result whose hit id is longer than Elasticsearch allows',
    topResults,
    'q-1',
    { ...result, topResult: { ...result.topResult, id: long(513) } },
    /value\.topResult\.id/,
  ],
  [
    'a result whose hit index is longer than Elasticsearch allows',
    topResults,
    'q-1',
    { ...result, topResult: { ...result.topResult, index: long(256) } },
    /value\.topResult\.index/,
  ],
  ['a result that took more than a day', topResults, 'q-1', { ...result, tookMs: LIMITS.maxTookMs + 1 }, /value\.tookMs/],
];

describe('contract limits (issue #16)', () => {
  it.each(refused)('refuses %s', (_label, topic, key, value, field) => {
    expect(() => decode(topic, key, value)).toThrow(field);
  });

  it.each(refused)('refuses to send %s', async (_label, topic, key, value, field) => {
    await expect(topic.encode({ key, value })).rejects.toThrow(field);
  });

  it.each([
    ['CJK', '注文-二〇二六'],
    ['emoji', 'o-🦄🏳️‍🌈👨‍👩‍👧‍👦'],
    ['CR/LF', 'o-1\r\nX-Injected: yes'],
    ['NUL and other control characters', 'o-\u0000\u0001\u001b[31m'],
    ['the longest id', long(LIMITS.idLength)],
  ])('accepts an order id with %s: ids are any well-formed Unicode', async (_label, id) => {
    expect((await decodeOrder(id, { ...order, id })).id).toBe(id);
  });

  it.each([
    ['the first instant of the window', DATE_WINDOW.min.toISOString()],
    ['the last instant of the window', DATE_WINDOW.max.toISOString()],
    ['an offset inside the window', '1970-01-01T01:00:00+01:00'],
  ])('accepts %s', async (_label, executedAt) => {
    expect((await decodeOrder('o-1', { ...order, executedAt })).executedAt.getTime()).toBe(Date.parse(executedAt));
  });

  it('accepts the bounds of prices and quantities, and refuses what is not a positive finite number', async () => {
    expect((await decodeOrder('o-1', { ...order, price: LIMITS.maxPrice, quantity: LIMITS.maxQuantity })).price).toBe(LIMITS.maxPrice);
    expect((await decodeOrder('o-1', { ...order, price: 1e-6, quantity: 0.5 })).quantity).toBe(0.5);
    for (const price of [0, -1, '1e999', null]) expect(() => decode(orders, 'o-1', { ...order, price })).toThrow(/value\.price/);
    // JSON cannot say Infinity, but a JSON number that overflows parses to it.
    const overflow: RawMessage = { ...consumed('o-1', order), value: Buffer.from(JSON.stringify(order).replace('"price":101.5', '"price":1e999')) };
    expect(() => orders.decode(overflow, { partition: 0 })).toThrow(/value\.price/);
  });

  it('refuses to send a key with a lone surrogate (read from bytes, a key is always well-formed)', async () => {
    await expect(orders.encode({ key: `o-${LONE}`, value: { ...order, side: 'buy' } })).rejects.toThrow(/invalid key/);
  });

  it('refuses a Date outside the window when sending, and an invalid Date', async () => {
    await expect(orders.encode({ key: 'o-1', value: { ...order, side: 'buy', executedAt: new Date(-1) } })).rejects.toThrow(/value\.executedAt/);
    await expect(orders.encode({ key: 'o-1', value: { ...order, side: 'buy', executedAt: new Date(Number.NaN) } })).rejects.toThrow(/value\.executedAt/);
    await expect(orders.encode({ key: 'o-1', value: { ...order, side: 'buy', executedAt: new Date(0) } })).resolves.toBeDefined();
  });
});
