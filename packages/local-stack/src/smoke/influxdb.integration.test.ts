import { InfluxDB, Point, flux } from '@influxdata/influxdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInfluxBucket, dropInfluxBucket, localServers, requireServers, uniqueName } from '../index.js';

describe('InfluxDB 1.8 through @influxdata/influxdb-client (v2 API, Flux)', () => {
  const database = uniqueName('smoke').replace(/-/g, '_');
  let bucket: string;

  beforeAll(async () => {
    await requireServers('influxdb');
    bucket = await createInfluxBucket(database);
  });
  afterAll(() => dropInfluxBucket(database));

  it('writes a point through /api/v2/write and reads it back with a parameterised Flux query', async () => {
    const { influxUrl, influxToken, influxOrg } = localServers();
    const client = new InfluxDB({ url: influxUrl, token: influxToken });
    const at = new Date(Date.now() - 60_000);
    const writer = client.getWriteApi(influxOrg, bucket, 'ms');
    writer.writePoint(new Point('marketdata').tag('symbol', 'ACME').floatField('price', 101.25).timestamp(at));
    await writer.close();

    const symbol = 'ACME';
    const query = flux`from(bucket: ${bucket})
      |> range(start: -1h)
      |> filter(fn: (r) => r._measurement == "marketdata" and r.symbol == ${symbol} and r._field == "price")
      |> last()`;
    const rows = await client.getQueryApi(influxOrg).collectRows<{ _value: number; _time: string }>(query);
    expect(rows).toHaveLength(1);
    expect(rows[0]?._value).toBe(101.25);
    expect(new Date(rows[0]!._time).getTime()).toBe(at.getTime());
  });
});
