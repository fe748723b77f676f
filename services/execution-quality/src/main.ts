import { executionQuality, executionQualitySummary, orders, slippageBySymbol } from '@stream/contracts';
import { EXECUTION_APP_OPTIONS, executionQualityAgent } from './agent.js';
import { executionQualityService } from './config.js';
import { InfluxPriceSource, influxPing } from './price-source.js';
import { MarketPrices } from './prices.js';
import { slippageSummaryAgent } from './summary.js';

await executionQualityService.run({ outputs: [executionQuality, slippageBySymbol], ...EXECUTION_APP_OPTIONS }, (config, service) => {
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
    samples: slippageBySymbol,
  });
  slippageSummaryAgent(service.app, slippageBySymbol, executionQualitySummary, { windowMs: config.SUMMARY_WINDOW, graceMs: config.SUMMARY_GRACE });
  service.log.info(
    {
      influxHost: new URL(config.INFLUX_URL).host,
      bucket: config.INFLUX_BUCKET,
      lookbackMs: config.MARKET_LOOKBACK,
      batchSize: config.EXECUTION_BATCH_SIZE,
      concurrency: config.EXECUTION_CONCURRENCY ?? 'unbounded',
      summaryWindowMs: config.SUMMARY_WINDOW,
      summaryGraceMs: config.SUMMARY_GRACE,
    },
    'execution-quality starting',
  );
});
