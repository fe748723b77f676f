#!/usr/bin/env node
/**
 * The demo producer on its own, for `docker/compose.yaml` (or any running stack): writes the hour of
 * market data the orders are priced against, then streams activities, orders and search queries, with a
 * few redelivered orders and malformed records, until its duration ends or SIGTERM/SIGINT stops it.
 *
 * usage: node dist/produce.js [--rate 20] [--duration 0] [--seed 42]
 *   --rate      activities per second (orders are half of that, search queries a third)
 *   --duration  seconds to run; 0 runs until stopped
 * Configuration: KAFKA_BROKERS, INFLUX_URL, INFLUX_TOKEN, INFLUX_ORG, INFLUX_BUCKET.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, createLogger, KafkaTransport, loadConfig } from '@stream/core';
import { seedMarketData } from '@stream/execution-quality';
import { z } from 'zod';
import { marketWindow } from './market.js';
import { DemoProducer } from './producer.js';

const Env = z.object({
  KAFKA_BROKERS: z
    .string()
    .min(1)
    .transform((s) => s.split(',').map((b) => b.trim())),
  INFLUX_URL: z.url({ protocol: /^https?$/ }),
  INFLUX_TOKEN: z.string().min(1),
  INFLUX_ORG: z.string().min(1),
  INFLUX_BUCKET: z.string().min(1).default('stream/autogen'),
});

const QUERIES = ['wireless headphones', 'red leather wallet', 'waterproof tent', 'quiet blender', 'oak desk', '*:*', 'title:x OR 1=1', 'garden hose'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rate: { type: 'string', default: '20' }, duration: { type: 'string', default: '0' }, seed: { type: 'string', default: '42' } },
    strict: true,
  });
  const rate = Number(values.rate);
  const durationSec = Number(values.duration);
  const seed = Number(values.seed);
  if (!(rate > 0) || !(durationSec >= 0) || !Number.isInteger(seed)) {
    throw new Error(`--rate must be > 0, --duration >= 0 and --seed an integer (got ${values.rate}, ${values.duration}, ${values.seed})`);
  }
  const env = loadConfig(Env);
  const log = createLogger({ name: 'demo-producer' });

  const market = marketWindow();
  const points = await seedMarketData({ url: env.INFLUX_URL, token: env.INFLUX_TOKEN, org: env.INFLUX_ORG, bucket: env.INFLUX_BUCKET }, market.spec);
  log.info({ points, start: market.start, end: market.end }, 'market data written');

  const app = createApp({ id: 'demo-producer', brokers: env.KAFKA_BROKERS, logger: log });
  const transport = new KafkaTransport({ brokers: env.KAFKA_BROKERS, clientId: 'demo-producer-raw', logger: log });
  const raw = transport.producer();
  await raw.connect();
  const producer = new DemoProducer(app, {
    seed,
    marketStart: market.start,
    marketEnd: market.end,
    priceAt: (s, at) => market.priceAt(s, at),
    queries: QUERIES,
    ...(durationSec > 0 ? { durationMs: durationSec * 1000 } : {}),
  });

  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort(new Error(signal)));
  if (durationSec > 0) setTimeout(() => stop.abort(new Error('duration reached')), durationSec * 1000).unref();

  const tickMs = 100;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  let lastReport = Date.now();
  try {
    while (!stop.signal.aborted) {
      const tickStart = Date.now();
      await producer.tick(perTick, (topic, key, value) => raw.send([{ topic, key: Buffer.from(key), value: Buffer.from(value), headers: {} }]));
      if (Date.now() - lastReport >= 10_000) {
        log.info({ ...producer.counts }, 'produced so far');
        lastReport = Date.now();
      }
      await sleep(Math.max(0, tickMs - (Date.now() - tickStart)), undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    log.info({ ...producer.counts, reason: String(stop.signal.reason) }, 'stopping');
    await raw.disconnect();
    await app.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `demo-producer: ${error.message}` : error);
  process.exit(1);
});
