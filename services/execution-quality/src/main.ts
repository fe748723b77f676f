import { executionQuality, orders } from '@stream/contracts';
import { executionQualityAgent } from './agent.js';
import { executionQualityService } from './config.js';
import { InfluxPriceSource, influxPing } from './price-source.js';
import { MarketPrices } from './prices.js';

await executionQualityService.run({ outputs: [executionQuality] }, (config, service) => {
  const source = new InfluxPriceSource({
    url: config.INFLUX_URL,
    token: config.INFLUX_TOKEN,
    org: config.INFLUX_ORG,
    bucket: config.INFLUX_BUCKET,
    lookbackMs: config.MARKET_LOOKBACK,
    timeoutMs: config.INFLUX_TIMEOUT,
  });
  service.readiness('influxdb', () => influxPing(config.INFLUX_URL));
  const prices = new MarketPrices(source, { maxSpanMs: config.LOOKUP_MAX_SPAN });
  executionQualityAgent(service.app, orders, executionQuality, prices, {
    batch: { maxRecords: config.EXECUTION_BATCH_SIZE, maxWaitMs: config.EXECUTION_BATCH_WAIT },
    ...(config.EXECUTION_CONCURRENCY !== undefined ? { concurrency: config.EXECUTION_CONCURRENCY } : {}),
  });
  service.log.info(
    {
      influxHost: new URL(config.INFLUX_URL).host,
      bucket: config.INFLUX_BUCKET,
      lookbackMs: config.MARKET_LOOKBACK,
      batchSize: config.EXECUTION_BATCH_SIZE,
      concurrency: config.EXECUTION_CONCURRENCY ?? 'unbounded',
    },
    'execution-quality starting',
  );
});
