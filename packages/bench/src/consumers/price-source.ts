/** The InfluxDB price source both execution-quality consumers use: the run's bucket and lookback. */
import { InfluxPriceSource } from '@stream/execution-quality';
import type { ConsumerConfig } from '../protocol.js';
import { param } from './service-app.js';

export function priceSource(config: ConsumerConfig): InfluxPriceSource {
  return new InfluxPriceSource({
    url: param(config, 'influxUrl'),
    token: param(config, 'influxToken'),
    org: param(config, 'influxOrg'),
    bucket: param(config, 'bucket'),
    lookbackMs: Number(param(config, 'lookbackMs')),
    timeoutMs: 30_000,
  });
}
