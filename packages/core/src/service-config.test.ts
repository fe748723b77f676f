import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { StreamError } from './errors.js';
import { defineService } from './service.js';
import { kafkaConnection, loadKafkaConnection, loadServiceConfig } from './service-config.js';
import { KafkaTransport } from './transport/kafka/index.js';
import { PlatformaticTransport } from './transport/platformatic/index.js';

const none = z.object({});
const base = { KAFKA_BROKERS: '127.0.0.1:9092' };

const dir = mkdtempSync(path.join(tmpdir(), 'service-config-'));
const pem = (name: string, text: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};
const CA_PEM = '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n';
const CERT_PEM = '-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nk3y-material\n-----END PRIVATE KEY-----\n';
const ca = pem('ca.pem', CA_PEM);
const cert = pem('cert.pem', CERT_PEM);
const key = pem('key.pem', KEY_PEM);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The message of the error `read` throws (empty when it does not throw). */
function problemOf(read: () => unknown): string {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(StreamError);
    expect((error as StreamError).code).toBe('CONFIG_INVALID');
    return (error as Error).message;
  }
  return '';
}

describe('the environment every service shares', () => {
  it('applies the defaults: group and client id are the service id, ops on 127.0.0.1:9464 (loopback), info logs', () => {
    const config = loadServiceConfig('feed-cache', none, base);
    expect(config).toEqual({
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      KAFKA_CLIENT: 'kafkajs',
      KAFKA_GROUP_ID: 'feed-cache',
      OPS_PORT: 9464,
      OPS_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    expect(kafkaConnection('feed-cache', config)).toEqual({ client: 'kafkajs', brokers: ['127.0.0.1:9092'], clientId: 'feed-cache', groupId: 'feed-cache' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every variable', () => {
    const config = loadServiceConfig('order-emailer', none, {
      KAFKA_BROKERS: ' 10.0.0.1:9092, 10.0.0.2:9093 ',
      KAFKA_CLIENT: 'platformatic',
      KAFKA_CLIENT_ID: 'emailer-7',
      KAFKA_GROUP_ID: 'emailer-blue',
      KAFKA_TLS: 'on',
      KAFKA_TLS_CA_FILE: ca,
      KAFKA_TLS_CERT_FILE: cert,
      KAFKA_TLS_KEY_FILE: key,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'svc',
      KAFKA_SASL_PASSWORD: 'pa55word',
      OPS_PORT: '0',
      OPS_HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      STUCK_AFTER_MS: '120000',
    });
    expect(config).toMatchObject({
      STUCK_AFTER_MS: 120_000,
      KAFKA_CLIENT_ID: 'emailer-7',
      KAFKA_GROUP_ID: 'emailer-blue',
      KAFKA_TLS: true,
      OPS_PORT: 0,
      OPS_HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
    });
    expect(kafkaConnection('order-emailer', config)).toEqual({
      client: 'platformatic',
      brokers: ['10.0.0.1:9092', '10.0.0.2:9093'],
      clientId: 'emailer-7',
      groupId: 'emailer-blue',
      ssl: { ca: Buffer.from(CA_PEM), cert: Buffer.from(CERT_PEM), key: Buffer.from(KEY_PEM) },
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'pa55word' },
    });
    for (const mechanism of ['plain', 'scram-sha-256'] as const) {
      const sasl = kafkaConnection(
        'x',
        loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }),
      ).sasl;
      expect(sasl?.mechanism).toBe(mechanism);
    }
  });

  it('reads KAFKA_GROUP_PROTOCOL; consumer (KIP-848) needs KAFKA_CLIENT=platformatic (#19)', () => {
    const connection = (env: Record<string, string>) => kafkaConnection('x', loadServiceConfig('x', none, { ...base, ...env }));
    expect(connection({ KAFKA_CLIENT: 'platformatic', KAFKA_GROUP_PROTOCOL: 'consumer' }).groupProtocol).toBe('consumer');
    expect(connection({ KAFKA_GROUP_PROTOCOL: 'classic' }).groupProtocol).toBe('classic');
    expect(connection({}).groupProtocol).toBeUndefined();
    expect(problemOf(() => loadServiceConfig('x', none, { ...base, KAFKA_GROUP_PROTOCOL: 'consumer' }))).toMatch(
      /KAFKA_GROUP_PROTOCOL: consumer \(KIP-848\) needs KAFKA_CLIENT=platformatic/,
    );
    expect(problemOf(() => loadServiceConfig('x', none, { ...base, KAFKA_GROUP_PROTOCOL: 'eager' }))).toMatch(
      /KAFKA_GROUP_PROTOCOL: expected one of classic, consumer/,
    );
  });

  it('turns TLS on with the system CAs, off, or on by a TLS file alone', () => {
    const ssl = (env: Record<string, string>) => kafkaConnection('x', loadServiceConfig('x', none, { ...base, ...env })).ssl;
    expect(ssl({ KAFKA_TLS: 'on' })).toBe(true);
    expect(ssl({ KAFKA_TLS: 'true' })).toBe(true);
    expect(ssl({ KAFKA_TLS: 'off' })).toBeUndefined();
    expect(ssl({ KAFKA_TLS: '0' })).toBeUndefined();
    expect(ssl({ KAFKA_TLS_CA_FILE: ca })).toEqual({ ca: Buffer.from(CA_PEM) });
  });

  it('names every bad variable at once, the shared ones before the service’s own', () => {
    const message = problemOf(() =>
      loadServiceConfig('x', z.object({ REDIS_URL: z.url() }), {
        KAFKA_BROKERS: 'nohost',
        KAFKA_CLIENT_ID: '',
        KAFKA_TLS: 'maybe',
        KAFKA_SASL_MECHANISM: 'md5',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: 'p',
        OPS_PORT: '70000',
        LOG_LEVEL: 'loud',
        STUCK_AFTER_MS: '-5',
      }),
    );
    expect(message).toContain('STUCK_AFTER_MS: must be positive');
    expect(message).toMatch(/^invalid configuration: KAFKA_BROKERS: expected host:port/);
    for (const name of ['KAFKA_CLIENT_ID', 'KAFKA_TLS', 'KAFKA_SASL_MECHANISM: expected one of plain, scram-sha-256, scram-sha-512', 'OPS_PORT', 'LOG_LEVEL'])
      expect(message).toContain(name);
    expect(message.indexOf('LOG_LEVEL')).toBeLessThan(message.indexOf('REDIS_URL'));
    for (const value of ['nohost', 'maybe', 'md5', '70000', 'loud']) expect(message).not.toContain(value);
    expect(problemOf(() => loadServiceConfig('x', none, {}))).toMatch(/KAFKA_BROKERS: required: comma-separated host:port list/);
  });

  it('takes an IP address or a host name for OPS_HOST, and names a bad one or a bad port without echoing it (#20)', () => {
    for (const host of ['0.0.0.0', '127.0.0.1', '::', '::1', 'fe80::1', 'ops.internal', 'localhost', ' 10.0.0.7 '])
      expect(loadServiceConfig('x', none, { ...base, OPS_HOST: host }).OPS_HOST).toBe(host.trim());
    for (const host of ['', ' ', 'http://0.0.0.0', '0.0.0.0:9464', 'a b', '-x', 'host_name', '[::1]', 'x'.repeat(64)]) {
      const message = problemOf(() => loadServiceConfig('x', none, { ...base, OPS_HOST: host }));
      expect(message, host).toContain('OPS_HOST: expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name');
      if (host.trim()) expect(message).not.toContain(host);
    }
    expect(problemOf(() => loadServiceConfig('x', none, { ...base, OPS_PORT: 'http' }))).toContain('OPS_PORT: expected a port number');
    expect(problemOf(() => loadServiceConfig('x', none, { ...base, OPS_PORT: '65536' }))).toContain('OPS_PORT: expected a port within 0..65535');
  });

  it('takes an http(s) URL for OPS_ADVERTISED_URL, hands it to the app, and names a bad one without echoing it (#18)', () => {
    expect(loadServiceConfig('x', none, base).OPS_ADVERTISED_URL).toBeUndefined();
    expect(loadServiceConfig('x', none, { ...base, OPS_ADVERTISED_URL: ' http://orders-2.orders:9464 ' }).OPS_ADVERTISED_URL).toBe(
      'http://orders-2.orders:9464',
    );
    const service = defineService('adv', none);
    const created = service.create(service.readConfig({ ...base, OPS_ADVERTISED_URL: 'https://orders-2.orders:9464/ops/' }));
    expect(created.app.advertisedUrl).toBe('https://orders-2.orders:9464/ops');
    for (const url of ['orders-2:9464', 'ftp://orders-2', 'http://admin:s3cret@orders-2:9464', 'http://orders-2/?key=s3cret', '']) {
      const message = problemOf(() => loadServiceConfig('x', none, { ...base, OPS_ADVERTISED_URL: url }));
      expect(message, url).toContain('OPS_ADVERTISED_URL: ');
      expect(message).not.toContain('s3cret');
    }
  });

  it('takes an absolute directory for STATE_DIR and hands it to the app as stateDir (#18)', () => {
    expect(loadServiceConfig('x', none, base).STATE_DIR).toBeUndefined();
    expect(loadServiceConfig('x', none, { ...base, STATE_DIR: ' /var/lib/orders ' }).STATE_DIR).toBe('/var/lib/orders');
    const service = defineService('state', none);
    expect(service.create(service.readConfig({ ...base, STATE_DIR: '/var/lib/orders' })).app.stateDir).toBe('/var/lib/orders');
    expect(service.create(service.readConfig(base)).app.stateDir).toBeUndefined();
    for (const dir of ['', 'state', './state']) {
      expect(
        problemOf(() => loadServiceConfig('x', none, { ...base, STATE_DIR: dir })),
        dir,
      ).toContain('STATE_DIR: expected an absolute directory path');
    }
  });

  it('names the variables that only go together in the same error as the rest', () => {
    const message = problemOf(() =>
      loadServiceConfig('x', z.object({ REDIS_URL: z.url() }), {
        KAFKA_BROKERS: 'nohost',
        KAFKA_TLS_CA_FILE: path.join(dir, 'gone.pem'),
        KAFKA_TLS_CERT_FILE: cert,
        KAFKA_SASL_PASSWORD: 'pw',
      }),
    );
    for (const name of [
      'KAFKA_BROKERS',
      'KAFKA_TLS_CA_FILE: cannot read',
      'KAFKA_TLS_KEY_FILE: required',
      'KAFKA_SASL_MECHANISM: required',
      'KAFKA_SASL_USERNAME: required',
      'REDIS_URL',
    ]) {
      expect(message).toContain(name);
    }
  });

  it('never echoes the SASL password', () => {
    const password = 'never-print-me';
    const incomplete = problemOf(() => loadServiceConfig('x', none, { ...base, KAFKA_SASL_PASSWORD: password }));
    expect(incomplete).toMatch(/KAFKA_SASL_MECHANISM: required with SASL, as KAFKA_SASL_PASSWORD is set/);
    expect(incomplete).toMatch(/KAFKA_SASL_USERNAME: required with SASL/);
    const badMechanism = problemOf(() =>
      loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: password }),
    );
    expect(badMechanism).toMatch(/KAFKA_SASL_MECHANISM/);
    for (const message of [incomplete, badMechanism]) expect(message).not.toContain(password);
    expect(
      problemOf(() => loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: '' })),
    ).toMatch(/KAFKA_SASL_PASSWORD: must not be empty/);
  });

  it('takes the SASL password from a file (a mounted secret), read at start, one source only', () => {
    const file = pem('kafka-password', 'from-a-file\n');
    const sasl = kafkaConnection(
      'x',
      loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD_FILE: file }),
    ).sasl;
    expect(sasl).toEqual({ mechanism: 'scram-sha-512', username: 'svc', password: 'from-a-file' });
    const both = problemOf(() =>
      loadServiceConfig('x', none, {
        ...base,
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'svc',
        KAFKA_SASL_PASSWORD: 'pw-in-env',
        KAFKA_SASL_PASSWORD_FILE: file,
      }),
    );
    expect(both).toMatch(/KAFKA_SASL_PASSWORD: set together with KAFKA_SASL_PASSWORD_FILE/);
    expect(
      problemOf(() =>
        loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD_FILE: path.join(dir, 'none') }),
      ),
    ).toMatch(/KAFKA_SASL_PASSWORD_FILE: cannot read the file \(ENOENT: no such file\)/);
    expect(both).not.toMatch(/pw-in-env|from-a-file/);
  });

  it('takes an OAUTHBEARER token from a file (read again on every authentication) or from the environment', async () => {
    const tokenFile = pem('token', 'token-one\n');
    const fromFile = kafkaConnection(
      'x',
      loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: tokenFile }),
    ).sasl;
    if (fromFile?.mechanism !== 'oauthbearer') throw new Error('expected an OAUTHBEARER option');
    expect(await fromFile.token()).toBe('token-one');
    writeFileSync(tokenFile, 'token-two');
    expect(await fromFile.token()).toBe('token-two');
    const fromEnv = kafkaConnection(
      'x',
      loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_SASL_OAUTHBEARER_TOKEN: 'tok-env' }),
    ).sasl;
    expect(fromEnv?.mechanism === 'oauthbearer' && (await fromEnv.token())).toBe('tok-env');
  });

  it('validates OAUTHBEARER at start without echoing the token', () => {
    const token = 'eyJ-never-print-me';
    const oauth = { ...base, KAFKA_SASL_MECHANISM: 'oauthbearer' };
    expect(problemOf(() => loadServiceConfig('x', none, oauth))).toMatch(/KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: required with KAFKA_SASL_MECHANISM=oauthbearer/);
    const both = problemOf(() =>
      loadServiceConfig('x', none, {
        ...oauth,
        KAFKA_SASL_OAUTHBEARER_TOKEN: token,
        KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: pem('t2', token),
        KAFKA_SASL_PASSWORD: token,
      }),
    );
    expect(both).toMatch(/KAFKA_SASL_OAUTHBEARER_TOKEN: set together with KAFKA_SASL_OAUTHBEARER_TOKEN_FILE/);
    expect(both).toMatch(/KAFKA_SASL_PASSWORD: not used with KAFKA_SASL_MECHANISM=oauthbearer/);
    expect(problemOf(() => loadServiceConfig('x', none, { ...oauth, KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: pem('empty', '  \n') }))).toMatch(
      /KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: cannot read the file \(EMPTY: the file is empty\)/,
    );
    expect(problemOf(() => loadServiceConfig('x', none, { ...oauth, KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: path.join(dir, 'no-token') }))).toMatch(
      /KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: cannot read the file \(ENOENT/,
    );
    const scramWithToken = problemOf(() =>
      loadServiceConfig('x', none, { ...base, KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_OAUTHBEARER_TOKEN: token }),
    );
    expect(scramWithToken).toMatch(/KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM=scram-sha-256/);
    expect(scramWithToken).toMatch(/KAFKA_SASL_OAUTHBEARER_TOKEN: only used with KAFKA_SASL_MECHANISM=oauthbearer/);
    for (const message of [both, scramWithToken]) expect(message).not.toContain(token);
  });

  it('reads the KAFKA_* variables alone for tools (the CLI), with the same checks', () => {
    expect(loadKafkaConnection('stream-cli', { ...base, OPS_PORT: 'not-a-port', KAFKA_TLS_CA_FILE: ca })).toEqual({
      client: 'kafkajs',
      brokers: ['127.0.0.1:9092'],
      clientId: 'stream-cli',
      groupId: 'stream-cli',
      ssl: { ca: Buffer.from(CA_PEM) },
    });
    const message = problemOf(() => loadKafkaConnection('stream-cli', { ...base, KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_PASSWORD: 'pw-x' }));
    expect(message).toMatch(/KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=scram-sha-256/);
    expect(message).not.toContain('pw-x');
  });

  it('reads TLS files at start: a missing one is a clear error naming the variable, not the path', () => {
    const missing = path.join(dir, 'no-such-ca.pem');
    const message = problemOf(() => loadServiceConfig('x', none, { ...base, KAFKA_TLS: 'on', KAFKA_TLS_CA_FILE: missing }));
    expect(message).toMatch(/KAFKA_TLS_CA_FILE: cannot read the file \(ENOENT: no such file\)/);
    expect(message).not.toContain(missing);
    expect(problemOf(() => loadServiceConfig('x', none, { ...base, KAFKA_TLS_CERT_FILE: cert }))).toMatch(
      /KAFKA_TLS_KEY_FILE: required when KAFKA_TLS_CERT_FILE is set/,
    );
    const wrongKinds = problemOf(() =>
      loadServiceConfig('x', none, {
        ...base,
        KAFKA_TLS_CA_FILE: key,
        KAFKA_TLS_CERT_FILE: pem('cert.der', '0\x82\x03\x1e0\x82'),
        KAFKA_TLS_KEY_FILE: pem('enc.key', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nKEY\n-----END ENCRYPTED PRIVATE KEY-----\n'),
      }),
    );
    expect(wrongKinds).toMatch(/KAFKA_TLS_CA_FILE: the file is not a PEM certificate/);
    expect(wrongKinds).toMatch(/KAFKA_TLS_CERT_FILE: the file is not a PEM certificate/);
    expect(wrongKinds).toMatch(/KAFKA_TLS_KEY_FILE: the file is not an unencrypted PEM private key/);
    expect(wrongKinds).not.toContain('k3y-material');
    expect(problemOf(() => loadServiceConfig('x', none, { ...base, KAFKA_TLS: 'off', KAFKA_TLS_CA_FILE: ca }))).toMatch(
      /KAFKA_TLS_CA_FILE: set while KAFKA_TLS is off/,
    );
  });
});

describe('defineService', () => {
  const definition = defineService('search-enricher', z.object({ SEARCH_INDEX: z.string() }));

  it('reads the shared and the service’s own variables into one object', () => {
    expect(definition.readConfig({ ...base, SEARCH_INDEX: 'products' })).toEqual({
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      KAFKA_CLIENT: 'kafkajs',
      KAFKA_GROUP_ID: 'search-enricher',
      OPS_PORT: 9464,
      OPS_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      SEARCH_INDEX: 'products',
    });
    expect(problemOf(() => definition.readConfig({}))).toMatch(/KAFKA_BROKERS: .*SEARCH_INDEX: /);
  });

  it('builds the app the configuration describes, without connecting', () => {
    const service = definition.create(definition.readConfig({ ...base, SEARCH_INDEX: 'p', KAFKA_CLIENT_ID: 'enricher-1', LOG_LEVEL: 'warn' }));
    expect(service.app.id).toBe('search-enricher');
    expect(service.app.transport).toBeInstanceOf(KafkaTransport);
    expect(service.log.level).toBe('warn');
    expect(service.opsPort).toBeUndefined();
    expect(service.app.stuckAfterMs).toBe(5 * 60_000);
    expect(definition.create(definition.readConfig({ ...base, SEARCH_INDEX: 'p', STUCK_AFTER_MS: '90000' })).app.stuckAfterMs).toBe(90_000);
  });

  it('builds its app on the Kafka client KAFKA_CLIENT names: kafkajs by default, or platformatic (#19)', () => {
    const on = (client?: string) =>
      definition.create(definition.readConfig({ ...base, SEARCH_INDEX: 'p', ...(client ? { KAFKA_CLIENT: client } : {}) })).app.transport;
    expect(on()).toBeInstanceOf(KafkaTransport);
    expect(on('kafkajs')).toBeInstanceOf(KafkaTransport);
    expect(on('platformatic')).toBeInstanceOf(PlatformaticTransport);
    expect(loadKafkaConnection('stream-cli', { ...base, KAFKA_CLIENT: 'platformatic' }).client).toBe('platformatic');
    expect(problemOf(() => definition.readConfig({ ...base, SEARCH_INDEX: 'p', KAFKA_CLIENT: 'rdkafka' }))).toMatch(
      /KAFKA_CLIENT: expected one of kafkajs, platformatic/,
    );
  });
});
