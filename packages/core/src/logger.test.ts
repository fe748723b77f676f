import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACT_PATHS } from './logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('redacts credentials wherever clients put them', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'test', level: 'info', destination });
    const secret = 's3cr3t-value';
    log.info({ password: secret, config: { token: secret, sasl: { password: secret } }, headers: { authorization: `Bearer ${secret}` } }, 'config');
    log.error(
      { err: { message: 'HTTP 500', options: { headers: { authorization: `Bearer ${secret}`, Authorization: `Bearer ${secret}` } } } },
      'request failed',
    );
    log.warn({ request: { config: { headers: { Authorization: `Bearer ${secret}` } } }, apiKey: secret }, 'retrying');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).not.toContain(secret);
    expect(lines[1]).toContain('[redacted]');
  });

  it('keeps error lines small: a MULTI error whose errors hold the array again stays a few kilobytes', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'test', level: 'info', destination });
    const secret = 's3cr3t-value';
    const shared: Error[] = [];
    const multi = Object.assign(new Error('EXECABORT'), { previousErrors: shared });
    for (let i = 0; i < 500; i++) shared.push(Object.assign(new Error(`command ${i} failed`), { previousErrors: shared }));
    const httpError = Object.assign(new Error('HTTP 500', { cause: multi }), { options: { headers: { authorization: `Bearer ${secret}` } } });
    log.warn({ err: httpError }, 'handler failed: retrying');
    expect(lines[0]!.length).toBeLessThan(8192);
    expect(lines[0]).not.toContain(secret);
    const parsed = JSON.parse(lines[0]!) as { err: { type: string; message: string; cause: { message: string; previousErrors: unknown[] } } };
    expect(parsed.err).toMatchObject({ type: 'Error', message: 'HTTP 500', cause: { message: 'EXECABORT' } });
    expect(parsed.err.cause.previousErrors).toHaveLength(6); // five, then "… 495 more"
  });

  it('redacts URL credentials, secret keys at any depth, Redis AUTH arguments and got options, in fields, messages and bindings', () => {
    const { lines, destination } = capture();
    const secret = 'pw-9f8e7d6c';
    const log = createLogger({ name: 'test', level: 'info', destination }).child({ upstream: `https://svc:${secret}@api.example/v1` });
    log.info(
      { redis: `redis://default:${secret}@10.0.0.5:6379/0`, url: new URL(`https://user:${secret}@es.local:9200/`) },
      `connecting to redis://:${secret}@cache:6379`,
    );
    log.info({ a: { b: { c: { d: { e: { f: { clientSecret: secret, KAFKA_SASL_PASSWORD: secret, 'x-api-key': secret } } } } } } }, 'deep');
    const auth = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), {
      command: { name: 'auth', args: ['stream', secret] },
    });
    log.warn({ err: auth }, 'redis connection error');
    log.warn({ cause: { command: { name: 'HELLO', args: ['3', 'AUTH', 'stream', secret] } } }, 'redis handshake');
    const gotOptions = { toJSON: () => ({ url: `https://api.example/send?token=${secret}`, headers: { Authorization: `Bearer ${secret}` } }) };
    const httpError = Object.assign(new Error(`Request failed with status code 401 (GET https://api.example/send?token=${secret})`), {
      options: gotOptions,
      request: { requestUrl: new URL(`https://u:${secret}@api.example/`), options: { headers: { 'proxy-authorization': `Basic ${secret}` } } },
    });
    log.error({ err: httpError }, 'email API failed');
    log.error(new Error(`cannot reach https://u:${secret}@host/`));
    log.info({ note: `sent with Authorization: Bearer ${secret}` }, 'header quoted in text');
    expect(lines).toHaveLength(7);
    for (const line of lines) expect(line).not.toContain(secret);
    const first = JSON.parse(lines[0]!) as { msg: string; redis: string; url: string; upstream: string };
    expect(first).toMatchObject({
      msg: 'connecting to redis://:[redacted]@cache:6379',
      redis: 'redis://default:[redacted]@10.0.0.5:6379/0',
      url: 'https://user:[redacted]@es.local:9200/',
      upstream: 'https://svc:[redacted]@api.example/v1',
    });
    expect(JSON.parse(lines[2]!)).toMatchObject({
      err: { message: 'WRONGPASS invalid username-password pair or user is disabled.', command: { name: 'auth' } },
    });
  });

  it('redacts before it truncates: a token straddling the string limit does not leak its first half', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'test', level: 'info', destination });
    const token = 'tok0123456789abcdefghij';
    const body = `${'x'.repeat(4067)} Authorization: Bearer ${token} and more`;
    log.error({ err: Object.assign(new Error('HTTP 500'), { response: { body } }) }, 'request failed');
    expect(lines[0]).not.toContain(token.slice(0, 5));
    expect(lines[0]).toContain('…');
  });

  it('covers every path pino used to redact, wherever the wildcards put it', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'test', level: 'info', destination });
    const secret = 'path-secret-3c2b';
    for (const path of REDACT_PATHS) {
      const value = path
        .split('.')
        .reverse()
        .reduce<unknown>((inner, key) => ({ [key === '*' ? 'nested' : key]: inner }), secret);
      log.info(value as object, path);
    }
    expect(lines).toHaveLength(REDACT_PATHS.length);
    for (const line of lines) expect(line).not.toContain(secret);
  });
});
