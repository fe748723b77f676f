import { executionQuality, orders } from '@stream/contracts';
import { createService, toError } from '@stream/core';
import { executionQualityAgent } from './agent.js';
import { readConfig } from './config.js';
import { InfluxPriceSource, influxPing } from './price-source.js';
import { MarketPrices } from './prices.js';

let config;
try {
  config = readConfig();
} catch (error) {
  process.stderr.write(`execution-quality: ${toError(error).message}\n`);
  process.exit(1);
}

const service = createService({
  id: 'execution-quality',
  groupId: config.KAFKA_GROUP_ID,
  brokers: config.KAFKA_BROKERS,
  opsPort: config.OPS_PORT,
  logLevel: config.LOG_LEVEL,
  outputs: [executionQuality],
});
const source = new InfluxPriceSource({
  url: config.INFLUX_URL,
  token: config.INFLUX_TOKEN,
  org: config.INFLUX_ORG,
  bucket: config.INFLUX_BUCKET,
  lookbackMs: config.MARKET_LOOKBACK,
  timeoutMs: config.INFLUX_TIMEOUT,
});
service.readiness('influxdb', () => influxPing(config.INFLUX_URL));
executionQualityAgent(service.app, orders, executionQuality, new MarketPrices(source, { maxSpanMs: config.LOOKUP_MAX_SPAN }), { concurrency: config.EXECUTION_CONCURRENCY });
service.log.info(
  { influxHost: new URL(config.INFLUX_URL).host, bucket: config.INFLUX_BUCKET, lookbackMs: config.MARKET_LOOKBACK, concurrency: config.EXECUTION_CONCURRENCY },
  'execution-quality starting',
);
await service.run();
