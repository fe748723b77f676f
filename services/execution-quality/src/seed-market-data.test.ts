import { InfluxDB, flux } from '@influxdata/influxdb-client';
import { createInfluxBucket, dropInfluxBucket, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli, generateMarketData, seedMarketData } from './seed-market-data.js';

const start = new Date('2026-01-01T09:00:00Z');

describe('synthetic market data', () => {
  it('is deterministic: same seed, same points; each symbol independent of the others', () => {
    const a = [...generateMarketData({ symbols: ['ACME', 'INIT'], points: 50, start, stepMs: 1000, seed: 's1' })];
    const b = [...generateMarketData({ symbols: ['ACME', 'INIT'], points: 50, start, stepMs: 1000, seed: 's1' })];
    const other = [...generateMarketData({ symbols: ['ACME', 'INIT'], points: 50, start, stepMs: 1000, seed: 's2' })];
    const alone = [...generateMarketData({ symbols: ['INIT'], points: 50, start, stepMs: 1000, seed: 's1' })];
    expect(a).toEqual(b);
    expect(a).not.toEqual(other);
    expect(a.filter((p) => p.symbol === 'INIT')).toEqual(alone);
    expect(a).toHaveLength(100);
    expect(a[0]).toMatchObject({ symbol: 'ACME', time: start });
    expect(a.at(-1)).toMatchObject({ symbol: 'INIT', time: new Date(start.getTime() + 49_000) });
    for (const p of a) expect(p.price).toBeGreaterThan(0);
  });

  it('moves prices by small steps', () => {
    const acme = [...generateMarketData({ symbols: ['ACME'], points: 500, start, stepMs: 1 })].map((p) => p.price);
    for (let i = 1; i < acme.length; i += 1) expect(Math.abs(acme[i]! / acme[i - 1]! - 1)).toBeLessThan(0.0025);
  });
});

describe('seeding InfluxDB', () => {
  const { influxUrl, influxToken, influxOrg } = localServers();
  let database: string;
  let bucket: string;
  beforeAll(() => requireServers('influxdb'));
  beforeEach(async () => {
    database = uniqueName('eq_seed').replace(/-/g, '_');
    bucket = await createInfluxBucket(database);
  });
  afterEach(() => dropInfluxBucket(database));

  async function countBySymbol(): Promise<Record<string, number>> {
    const rows = await new InfluxDB({ url: influxUrl, token: influxToken })
      .getQueryApi(influxOrg)
      .collectRows<{ symbol: string; _value: number }>(
        flux`from(bucket: ${bucket}) |> range(start: 2025-01-01T00:00:00Z, stop: 2027-01-01T00:00:00Z) |> filter(fn: (r) => r._measurement == "marketdata" and r._field == "price") |> count()`,
      );
    return Object.fromEntries(rows.map((r) => [r.symbol, r._value]));
  }

  it('writes every generated point', async () => {
    const written = await seedMarketData(
      { url: influxUrl, token: influxToken, org: influxOrg, bucket },
      { symbols: ['ACME', 'INIT'], points: 1000, start, stepMs: 1000 },
    );
    expect(written).toBe(2000);
    expect(await countBySymbol()).toEqual({ ACME: 1000, INIT: 1000 });
  });

  it('runs as a command line tool', async () => {
    const env = { INFLUX_URL: influxUrl, INFLUX_TOKEN: influxToken, INFLUX_ORG: influxOrg, INFLUX_BUCKET: bucket };
    const line = await cli(['--symbols', 'ACME,INIT,XYZ', '--points', '30', '--start', '2026-01-01T09:00:00Z', '--step-ms', '500'], env);
    expect(line).toBe(`wrote 90 points for ACME,INIT,XYZ to ${bucket}, 2026-01-01T09:00:00.000Z .. 2026-01-01T09:00:14.500Z`);
    expect(await countBySymbol()).toEqual({ ACME: 30, INIT: 30, XYZ: 30 });
    await expect(cli(['--points', '3'], env)).rejects.toThrow(/--symbols is required/);
    await expect(cli(['--symbols', 'A', '--points', '0'], env)).rejects.toThrow(/--points/);
    await expect(cli(['--symbols', 'A', '--start', 'soon'], env)).rejects.toThrow(/--start/);
    await expect(cli(['--symbols', 'A'], { ...env, INFLUX_BUCKET: undefined })).rejects.toThrow(/INFLUX_BUCKET/);
    await expect(cli(['--symbol', 'A'], env)).rejects.toThrow(/Unknown option/);
    expect(await cli(['--help'], env)).toMatch(/^usage: node dist\/seed-market-data.js/);
  });
});
