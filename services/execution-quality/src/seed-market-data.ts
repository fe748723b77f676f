import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { loadConfig, toError } from '@stream/core';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** What to generate: `points` prices per symbol, `stepMs` apart from `start`. */
export interface MarketDataSpec {
  readonly symbols: readonly string[];
  readonly points: number;
  readonly start: Date;
  readonly stepMs: number;
  /** Same seed, same data. Each symbol's series depends only on the seed and the symbol. Default `market`. */
  readonly seed?: string;
}

export interface MarketDataPoint {
  readonly symbol: string;
  readonly time: Date;
  readonly price: number;
}

export interface InfluxTarget {
  readonly url: string;
  readonly token: string;
  readonly org: string;
  readonly bucket: string;
}

/** FNV-1a: a 32-bit seed from a string. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A deterministic PRNG (xoroshiro128+) returning numbers in [0, 1); a string seed is hashed first. */
export function seededRandom(seed: number | string): () => number {
  const rng = xoroshiro128plus((typeof seed === 'string' ? hash(seed) : seed) | 0);
  return () => uniformFloat64(rng);
}

/**
 * Synthetic market data: per symbol a random walk (±0.2 % a step) from a starting price between 10 and 500,
 * rounded to 1/10,000. Deterministic: the same spec always gives the same points.
 */
export function* generateMarketData(spec: MarketDataSpec): Generator<MarketDataPoint> {
  const walks = spec.symbols.map((symbol) => {
    const random = seededRandom(`${spec.seed ?? 'market'}:${symbol}`);
    return { symbol, random, price: 10 + random() * 490 };
  });
  for (let i = 0; i < spec.points; i += 1) {
    const time = new Date(spec.start.getTime() + i * spec.stepMs);
    for (const walk of walks) {
      if (i > 0) walk.price = Math.max(0.01, walk.price * (1 + (walk.random() - 0.5) * 0.004));
      yield { symbol: walk.symbol, time, price: Math.round(walk.price * 10_000) / 10_000 };
    }
  }
}

/** Writes points as `marketdata,symbol=<symbol> price=<price> <time ms>` through the client's WriteApi. */
export async function writeMarketData(target: InfluxTarget, points: Iterable<MarketDataPoint>): Promise<number> {
  const client = new InfluxDB({ url: target.url, token: target.token, timeout: 30_000 });
  const writer = client.getWriteApi(target.org, target.bucket, 'ms', { batchSize: 5000, flushInterval: 0, maxRetries: 2, maxRetryTime: 30_000 });
  let count = 0;
  try {
    for (const p of points) {
      writer.writePoint(new Point('marketdata').tag('symbol', p.symbol).floatField('price', p.price).timestamp(p.time));
      count += 1;
    }
  } finally {
    await writer.close();
  }
  return count;
}

/** Generates the spec's market data and writes it to InfluxDB; returns the number of points written. */
export function seedMarketData(target: InfluxTarget, spec: MarketDataSpec): Promise<number> {
  return writeMarketData(target, generateMarketData(spec));
}

const USAGE = `usage: node dist/seed-market-data.js --symbols ACME,INIT [--points 1000] [--start <ISO time>] [--step-ms 1000] [--seed market] [--bucket db/autogen]
InfluxDB from INFLUX_URL, INFLUX_TOKEN, INFLUX_ORG and INFLUX_BUCKET (--bucket overrides). --start defaults to points × step before now.`;

const CliEnv = z.object({
  INFLUX_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8086'),
  INFLUX_TOKEN: z.string().min(1).default('-'),
  INFLUX_ORG: z.string().min(1).default('-'),
  INFLUX_BUCKET: z.string().min(1).optional(),
});

/** The command line: parses arguments, seeds, prints one summary line. */
export async function cli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      symbols: { type: 'string' },
      points: { type: 'string', default: '1000' },
      start: { type: 'string' },
      'step-ms': { type: 'string', default: '1000' },
      seed: { type: 'string', default: 'market' },
      bucket: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return USAGE;
  const symbols = (values.symbols ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const points = Number(values.points);
  const stepMs = Number(values['step-ms']);
  if (symbols.length === 0) throw new Error(`--symbols is required\n${USAGE}`);
  if (!Number.isSafeInteger(points) || points < 1) throw new Error('--points must be a positive integer');
  if (!Number.isSafeInteger(stepMs) || stepMs < 1) throw new Error('--step-ms must be a positive integer');
  const start = values.start === undefined ? new Date(Date.now() - points * stepMs) : new Date(values.start);
  if (Number.isNaN(start.getTime())) throw new Error('--start must be an ISO-8601 time');
  const config = loadConfig(CliEnv, env);
  const bucket = values.bucket ?? config.INFLUX_BUCKET;
  if (!bucket) throw new Error('set INFLUX_BUCKET or pass --bucket');
  const written = await seedMarketData(
    { url: config.INFLUX_URL, token: config.INFLUX_TOKEN, org: config.INFLUX_ORG, bucket },
    { symbols, points, start, stepMs, seed: values.seed },
  );
  const end = new Date(start.getTime() + (points - 1) * stepMs);
  return `wrote ${written} points for ${symbols.join(',')} to ${bucket}, ${start.toISOString()} .. ${end.toISOString()}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.stdout.write(`${await cli(process.argv.slice(2))}\n`);
  } catch (error) {
    process.stderr.write(`seed-market-data: ${toError(error).message}\n`);
    process.exitCode = 1;
  }
}
