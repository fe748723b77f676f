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
    log.error({ err: { message: 'HTTP 500', options: { headers: { authorization: `Bearer ${secret}`, Authorization: `Bearer ${secret}` } } } }, 'request failed');
    log.warn({ request: { config: { headers: { Authorization: `Bearer ${secret}` } } }, apiKey: secret }, 'retrying');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).not.toContain(secret);
    expect(lines[1]).toContain('[redacted]');
  });
});
