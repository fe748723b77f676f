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
  executionQualityAgent(service.app, orders, executionQuality, prices, { concurrency: config.EXECUTION_CONCURRENCY });
  service.log.info(
    {
      influxHost: new URL(config.INFLUX_URL).host,
      bucket: config.INFLUX_BUCKET,
      lookbackMs: config.MARKET_LOOKBACK,
      concurrency: config.EXECUTION_CONCURRENCY,
    },
    'execution-quality starting',
  );
});
