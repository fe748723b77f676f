import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

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
});
