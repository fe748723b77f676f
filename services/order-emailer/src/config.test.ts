import { describe, expect, it } from 'vitest';
import { readConfig } from './config.js';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  EMAILER_URL: 'http://127.0.0.1:8025/v1/emails',
  EMAILER_TOKEN: 'tok-s3cret',
  REDIS_URL: 'redis://127.0.0.1:6379',
};

describe('config', () => {
  it('applies the defaults', () => {
    const config = readConfig(base);
    expect(config).toMatchObject({
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      EMAILER_TIMEOUT_MS: 5000,
      EMAILER_CONCURRENCY: 16,
      OPS_PORT: 9464,
      LOG_LEVEL: 'info',
      DEDUPE_TTL_SECONDS: 604_800,
      DEDUPE_LEASE_MS: 15_000,
      DEDUPE_KEY_PREFIX: 'emailer:order:',
      EMAILER_MAX_RETRY_AFTER_SECONDS: 60,
      KAFKA_GROUP_ID: 'order-emailer',
    });
  });

  it('names every bad variable and never echoes a value', () => {
    const bad = { ...base, EMAILER_URL: 'ftp://x', EMAILER_TOKEN: '', EMAILER_TIMEOUT_MS: 'abc', REDIS_URL: undefined };
    let message = '';
    try {
      readConfig(bad);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/EMAILER_URL/);
    expect(message).toMatch(/EMAILER_TOKEN/);
    expect(message).toMatch(/EMAILER_TIMEOUT_MS/);
    expect(message).toMatch(/REDIS_URL/);
    expect(() => readConfig({ ...base, EMAILER_TOKEN: undefined })).toThrow(/EMAILER_TOKEN: required/);
    // A bad configuration next to a good token: the message names the variable, never the token's value.
    expect(() => readConfig({ ...base, EMAILER_CONCURRENCY: '0' })).toThrow(/EMAILER_CONCURRENCY/);
    expect(() => readConfig({ ...base, EMAILER_CONCURRENCY: '0' })).not.toThrow(/tok-s3cret/);
  });

  it('wants a claim lease longer than the request timeout', () => {
    expect(readConfig({ ...base, EMAILER_TIMEOUT_MS: '2000' }).DEDUPE_LEASE_MS).toBe(12_000);
    expect(() => readConfig({ ...base, EMAILER_TIMEOUT_MS: '2000', DEDUPE_LEASE_MS: '1000' })).toThrow(
      /DEDUPE_LEASE_MS: must be greater than EMAILER_TIMEOUT_MS/,
    );
  });
});
