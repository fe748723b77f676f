import { describe, expect, it } from 'vitest';
import { readConfig } from './config.js';

const env = {
  KAFKA_BROKERS: '127.0.0.1:9092, 10.0.0.2:9093',
  INFLUX_URL: 'http://127.0.0.1:8086',
  INFLUX_TOKEN: 'user:s3cret-token',
  INFLUX_ORG: 'stream',
  INFLUX_BUCKET: 'markets/autogen',
};

describe('configuration', () => {
  it('applies the defaults', () => {
    expect(readConfig(env)).toMatchObject({
      KAFKA_BROKERS: ['127.0.0.1:9092', '10.0.0.2:9093'],
      KAFKA_GROUP_ID: 'execution-quality',
      MARKET_LOOKBACK: 300_000,
      INFLUX_TIMEOUT: 10_000,
      LOOKUP_MAX_SPAN: 900_000,
      EXECUTION_BATCH_SIZE: 500,
      EXECUTION_BATCH_WAIT: 20,
      OPS_PORT: 9464,
      LOG_LEVEL: 'info',
    });
  });

  it('parses MARKET_LOOKBACK and the other settings', () => {
    const config = readConfig({ ...env, MARKET_LOOKBACK: '1h30m', INFLUX_TIMEOUT: '2s', EXECUTION_CONCURRENCY: '8', OPS_PORT: '0', LOG_LEVEL: 'debug' });
    expect(config).toMatchObject({ MARKET_LOOKBACK: 5_400_000, INFLUX_TIMEOUT: 2000, EXECUTION_CONCURRENCY: 8, OPS_PORT: 0, LOG_LEVEL: 'debug' });
  });

  it('names every bad variable and never echoes a value', () => {
    let message = '';
    try {
      readConfig({
        ...env,
        KAFKA_BROKERS: 'nohost',
        INFLUX_URL: 'redis://x:1',
        INFLUX_TOKEN: '',
        INFLUX_BUCKET: undefined,
        MARKET_LOOKBACK: '5 minutes',
        EXECUTION_CONCURRENCY: '0',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of ['KAFKA_BROKERS', 'INFLUX_URL', 'INFLUX_TOKEN', 'INFLUX_BUCKET', 'MARKET_LOOKBACK', 'EXECUTION_CONCURRENCY'])
      expect(message).toContain(name);
    expect(message).not.toContain('5 minutes');
    expect(message).toMatch(/MARKET_LOOKBACK: expected a duration like/);
  });

  it('does not put the token in any error message', () => {
    expect(() => readConfig({ ...env, MARKET_LOOKBACK: 'x' })).toThrow(/MARKET_LOOKBACK/);
    try {
      readConfig({ ...env, INFLUX_URL: 'nope' });
    } catch (error) {
      expect((error as Error).message).not.toContain('s3cret');
    }
  });
});
