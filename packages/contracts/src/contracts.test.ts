import { SchemaValidationError, type RawMessage } from '@stream/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { orders, feedActivities, topResults, type Order, type TopResult } from './index.js';

const asConsumed = (m: { key: Buffer | null; value: Buffer | null }): RawMessage => ({
  key: m.key,
  value: m.value,
  headers: {},
  offset: '0',
  timestamp: '0',
});

const order = {
  id: 'o-1',
  userId: 'u-1',
  symbol: 'ACME',
  side: 'buy' as const,
  quantity: 10,
  price: 101.5,
  executedAt: '2026-11-28T10:00:00.123Z',
};

describe('contracts', () => {
  it('carries dates as ISO-8601 on the wire and as Date in code', async () => {
    const encoded = await orders.encode({ key: order.id, value: order });
    expect(JSON.parse(encoded.value!.toString())).toMatchObject({ executedAt: '2026-11-28T10:00:00.123Z' });
    const decoded = await orders.decode(asConsumed(encoded), { partition: 0 });
    expect(decoded.value.executedAt).toEqual(new Date('2026-11-28T10:00:00.123Z'));
    expect(decoded.key).toBe('o-1');
    expectTypeOf(decoded.value).toEqualTypeOf<Order>();
    expectTypeOf(decoded.value.executedAt).toEqualTypeOf<Date>();
  });

  it('accepts a Date when sending and keeps zone offsets exact', async () => {
    const encoded = await orders.encode({ key: 'o-2', value: { ...order, executedAt: new Date('2026-01-01T00:00:00Z') } });
    const decoded = await orders.decode(asConsumed(encoded), { partition: 0 });
    expect(decoded.value.executedAt.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    const withOffset = await feedActivities.encode({
      key: 'u',
      value: { id: 'a', user: 'u', message: 'm', timestamp: '2026-01-01T02:00:00+02:00' },
    });
    const activity = await feedActivities.decode(asConsumed(withOffset), { partition: 0 });
    expect(activity.value.timestamp.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('refuses a bad record before it is sent, naming the topic and the field', async () => {
    const bad = orders.encode({ key: 'o-3', value: { ...order, price: -1 } });
    await expect(bad).rejects.toBeInstanceOf(SchemaValidationError);
    await expect(bad).rejects.toThrow(/^orders: invalid value: value\.price: /);
  });

  it.each([
    ['a date without a zone', '2026-11-28T10:00:00'],
    ['a number', 1764324000000],
    ['null', null],
    ['nonsense', 'yesterday'],
  ])('rejects %s as a timestamp', async (_label, executedAt) => {
    const raw = Buffer.from(JSON.stringify({ ...order, executedAt }));
    expect(() => orders.decode(asConsumed({ key: Buffer.from('k'), value: raw }), { partition: 0 })).toThrow(/value\.executedAt/);
  });

  it('types the enriched search result from the query schema', () => {
    expectTypeOf<TopResult['topResult']>().toEqualTypeOf<{ id: string; index: string; score: number | null; source: Record<string, unknown> } | null>();
    expectTypeOf(topResults.name).toEqualTypeOf<string>();
  });
});
