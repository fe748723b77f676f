import { describe, expect, it } from 'vitest';
import { readConfig } from './config.js';

const base = { KAFKA_BROKERS: '127.0.0.1:9092', ELASTICSEARCH_URL: 'http://127.0.0.1:9200', SEARCH_INDEX: 'products', SEARCH_FIELDS: 'title^2,body' };

describe('configuration', () => {
  it('applies the defaults', () => {
    expect(readConfig(base)).toEqual({
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      KAFKA_CLIENT: 'kafkajs',
      KAFKA_GROUP_ID: 'search-enricher',
      ELASTICSEARCH_URL: 'http://127.0.0.1:9200',
      SEARCH_INDEX: 'products',
      SEARCH_FIELDS: ['title^2', 'body'],
      SEARCH_MAX_QUERY_CHARS: 1000,
      SEARCH_TIMEOUT_MS: 2000,
      SEARCH_CONCURRENCY: 64,
      SEARCH_BATCH_SIZE: 64,
      SEARCH_BATCH_WAIT_MS: 2,
      OPS_PORT: 9464,
      OPS_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
  });

  it('names every bad variable at once', () => {
    expect(() => readConfig({ SEARCH_FIELDS: 'title:x', SEARCH_INDEX: 'Products', SEARCH_TIMEOUT_MS: '0' })).toThrow(
      /KAFKA_BROKERS: .*ELASTICSEARCH_URL: .*SEARCH_INDEX: .*SEARCH_FIELDS: invalid field "title:x".*SEARCH_TIMEOUT_MS/,
    );
  });

  it('takes an API key, or a username with a password, never echoing them', () => {
    expect(readConfig({ ...base, ELASTICSEARCH_API_KEY: 'k3y' }).ELASTICSEARCH_API_KEY).toBe('k3y');
    expect(readConfig({ ...base, ELASTICSEARCH_USERNAME: 'elastic', ELASTICSEARCH_PASSWORD: 'hunter2' })).toMatchObject({ ELASTICSEARCH_USERNAME: 'elastic' });
    const failure = (env: Record<string, string>) => {
      try {
        readConfig({ ...base, ...env });
      } catch (error) {
        return (error as Error).message;
      }
      return 'no error';
    };
    expect(failure({ ELASTICSEARCH_PASSWORD: 'hunter2' })).toMatch(/ELASTICSEARCH_USERNAME: required when ELASTICSEARCH_PASSWORD is set/);
    expect(failure({ ELASTICSEARCH_USERNAME: 'elastic' })).toMatch(/ELASTICSEARCH_PASSWORD: required/);
    const both = failure({ ELASTICSEARCH_USERNAME: 'elastic', ELASTICSEARCH_PASSWORD: 'hunter2', ELASTICSEARCH_API_KEY: 's3cr3t-key' });
    expect(both).toMatch(/ELASTICSEARCH_API_KEY: give either/);
    expect(both).not.toMatch(/hunter2|s3cr3t-key/);
  });

  it('bounds the numbers', () => {
    expect(() => readConfig({ ...base, SEARCH_MAX_QUERY_CHARS: '0' })).toThrow(/SEARCH_MAX_QUERY_CHARS/);
    expect(() => readConfig({ ...base, SEARCH_CONCURRENCY: 'lots' })).toThrow(/SEARCH_CONCURRENCY/);
    expect(readConfig({ ...base, SEARCH_MAX_QUERY_CHARS: '50', SEARCH_BATCH_SIZE: '1' })).toMatchObject({ SEARCH_MAX_QUERY_CHARS: 50, SEARCH_BATCH_SIZE: 1 });
  });
});
