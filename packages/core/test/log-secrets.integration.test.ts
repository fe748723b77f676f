import { Writable } from 'node:stream';
import { localServers, requireServers, uniqueName, waitUntil } from '@stream/local-stack';
import { got } from 'got';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, createLogger, createService } from '../src/index.js';

/**
 * Real clients failing with test credentials, logged the way the services log them; every line is then searched
 * for the credentials. ioredis puts the AUTH password into `err.command.args`; got's errors carry their options
 * (headers included) and the URL, credentials and all. Runs once, not once per Kafka client: the service is
 * built for its logger and Redis wiring and never started, so no Kafka client talks or logs here (the Kafka
 * credentials in log lines are security.integration.test.ts's, on both clients).
 */
const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  },
});
const log = createLogger({ name: 'log-secrets', level: 'trace', destination: sink });
const redisPassword = `redis-pw-${uniqueName('s')}`;
const bearer = `bearer-${uniqueName('t')}`;
const urlPassword = `url-pw-${uniqueName('u')}`;

describe('no secret in any log line of failing clients', () => {
  beforeAll(() => requireServers('kafka', 'redis', 'elasticsearch'));

  it('a Redis AUTH failure, as the service shell logs it', async () => {
    const service = createService({ id: uniqueName('log-secrets'), brokers: [...localServers().kafkaBrokers], opsPort: null, logger: log });
    const url = new URL(localServers().redisUrl);
    url.username = 'stream-nobody';
    url.password = redisPassword;
    const redis = connectRedis(Redis, url.href, service);
    try {
      await waitUntil(() => lines.some((line) => line.includes('redis connection error')), 'the AUTH failure logged', 10_000);
      const failure = await redis.ping().then(
        () => null,
        (error: unknown) => error as Error,
      );
      service.log.warn({ err: failure, url: url.href, redis: { options: redis.options } }, 'redis ping failed');
    } finally {
      redis.disconnect();
    }
    const authLine = lines.find((line) => line.includes('redis connection error'));
    expect(authLine).toMatch(/WRONGPASS|NOAUTH|AUTH/);
  }, 20_000);

  it('a got request error with an authorization header and URL credentials', async () => {
    const base = new URL(localServers().elasticsearchUrl);
    base.username = 'stream';
    base.password = urlPassword;
    const failure = await got(new URL(`/${uniqueName('no-such-index')}/_doc/1`, base), {
      headers: { authorization: `Bearer ${bearer}`, 'x-api-key': bearer },
      retry: { limit: 0 },
      timeout: { request: 5000 },
    }).then(
      () => null,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toMatch(/404|401/);
    log.error({ err: failure }, 'elasticsearch request failed');
    log.error(failure ?? new Error('no failure'));
  }, 20_000);

  it('leaves the passwords and tokens out of every line', () => {
    expect(lines.length).toBeGreaterThan(2);
    for (const secret of [redisPassword, bearer, urlPassword]) expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    expect(lines.join('\n')).toContain('[redacted]');
  });
});
