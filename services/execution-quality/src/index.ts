/**
 * execution-quality's public face: what the bench, the demo and the fault suite build their own
 * execution-quality consumers and market data from. The service itself starts from `dist/main.js`; the
 * market-data seeder runs from `dist/seed-market-data.js`.
 */
export { DEFAULT_RETRY, EXECUTION_APP_OPTIONS, executionQualityAgent, type ExecutionQualityAgentOptions } from './agent.js';
export { InfluxPriceSource, influxPing, MarketDataTimeoutError, type InfluxPriceSourceOptions, type PricePoint, type PriceSource } from './price-source.js';
export { lookupEach, MarketPrices, planQueries, quoteAt, type MarketPricesOptions, type MarketQuote, type PriceLookup } from './prices.js';
export { executionReport, slippageBps } from './report.js';
export {
  addSlippage,
  DEFAULT_SUMMARY,
  slippageSample,
  slippageSummaryAgent,
  SlippageWindow,
  summaryOf,
  type SlippageTable,
  type SummaryOptions,
} from './summary.js';
export { dateToNanos, formatNanos, nanosToDate, NS_PER_MS, parseNanos } from './time.js';
export {
  generateMarketData,
  seededRandom,
  seedMarketData,
  writeMarketData,
  type InfluxTarget,
  type MarketDataPoint,
  type MarketDataSpec,
} from './seed-market-data.js';
export { ExecutionQualityConfig, executionQualityService, readConfig } from './config.js';
