import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createTopics, deleteTopics, localServers, requireServers, uniqueName, waitUntil } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger, deadLetterTopicName, defineService, defineTopic, type KafkaClient, type Logger } from '../src/index.js';
import { kafkaClients } from './fixtures.js';

/**
 * A service configured only through the shared environment (KAFKA_TLS_*, KAFKA_SASL_*), against the local
 * stack's TLS + SASL listener and the CA it generated. Every log line of the file is kept and searched for
 * the credentials at the end (kafkajs logs at debug, the SASL handshakes included). Runs on both Kafka clients
 * (KAFKA_CLIENT); @platformatic/kafka logs through the `debug` module, not the service's logger, so only
 * kafkajs' lines are checked to be there.
 */
const { kafkaTls, kafkaScram } = localServers();
const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  },
});
const logger = (name: string): Logger => createLogger({ name, level: 'trace', destination: sink });

const Item = z.object({ n: z.number().int() });
const topicName = uniqueName('sec-tls');
const topic = defineTopic({ name: topicName, key: z.string(), value: Item, partitions: 1 });
const definition = defineService('sec-tls-service', z.object({}));
const dir = mkdtempSync(path.join(tmpdir(), 'sec-tls-'));
const wrongPassword = `wrong-${uniqueName('pw')}`;

/** An unsigned JWT, which the stack's OAUTHBEARER listener (Kafka's unsecured validator) accepts. */
function unsecuredJwt(subject: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none' })}.${part({ sub: subject, iat: now, exp: now + 3600, scope: uniqueName('scope') })}.`;
}
const token = unsecuredJwt(kafkaScram.username);

const env = (client: KafkaClient, extra: Record<string, string>) => ({
  KAFKA_CLIENT: client,
  KAFKA_BROKERS: kafkaTls.brokers.join(','),
  KAFKA_GROUP_ID: uniqueName('sec-tls-group'),
  OPS_PORT: '0',
  ...extra,
});
const scram = {
  KAFKA_TLS_CA_FILE: kafkaTls.caFile,
  KAFKA_SASL_MECHANISM: 'scram-sha-512',
  KAFKA_SASL_USERNAME: kafkaScram.username,
  KAFKA_SASL_PASSWORD: kafkaScram.password,
};

/** Starts the service the environment describes, sends `n` through it and waits until its agent saw it. */
async function roundTrip(client: KafkaClient, name: string, variables: Record<string, string>, n: number): Promise<void> {
  const service = definition.create(definition.readConfig(env(client, variables)), { logger: logger(name), kafka: { logLevel: 'debug' } });
  const seen: number[] = [];
  service.app.agent(topic, async (value) => void seen.push(value.n));
  await service.app.start();
  try {
    await service.app.send(topic, { key: name, value: { n } });
    await waitUntil(() => seen.includes(n), `record ${n} over ${name}`, 30_000);
  } finally {
    await service.app.stop();
  }
}

/** The error the start of the service the environment describes fails with. */
async function startFailure(client: KafkaClient, name: string, variables: Record<string, string>): Promise<Error> {
  const service = definition.create(definition.readConfig(env(client, variables)), { logger: logger(name), kafka: { logLevel: 'debug' } });
  service.app.agent(topic, async () => undefined);
  const failure = await service.app.start().then(
    () => null,
    (error: unknown) => error as Error,
  );
  await service.app.stop().catch(() => undefined);
  if (!failure) throw new Error(`${name}: the start succeeded`);
  return failure;
}

beforeAll(async () => {
  await requireServers('kafka', 'kafka-tls');
  await createTopics([{ name: topicName, partitions: 1 }]);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await deleteTopics([topicName, deadLetterTopicName(topicName)]);
});

describe.each(kafkaClients)('a service on a TLS + SASL Kafka, configured through the environment (%s)', (client) => {
  it('runs end to end over TLS (the stack’s CA) with SCRAM-SHA-512', async () => {
    await roundTrip(client, 'scram-512', scram, 1);
  }, 60_000);

  it('runs over mutual TLS (a client certificate) with SCRAM-SHA-256, and with PLAIN', async () => {
    const mutual = { KAFKA_TLS_CERT_FILE: kafkaTls.clientCertFile, KAFKA_TLS_KEY_FILE: kafkaTls.clientKeyFile };
    await roundTrip(client, 'mtls-scram-256', { ...scram, ...mutual, KAFKA_SASL_MECHANISM: 'scram-sha-256' }, 2);
    await roundTrip(client, 'plain', { ...scram, KAFKA_SASL_MECHANISM: 'plain' }, 3);
  }, 90_000);

  it('runs with OAUTHBEARER, the token read from a file', async () => {
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`);
    await roundTrip(
      client,
      'oauthbearer',
      { KAFKA_TLS_CA_FILE: kafkaTls.caFile, KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: tokenFile },
      4,
    );
  }, 60_000);

  it('fails the start cleanly on a wrong password, without the password in the error', async () => {
    const failure = await startFailure(client, 'wrong-password', { ...scram, KAFKA_SASL_PASSWORD: wrongPassword });
    // kafkajs: "SASL SCRAM SHA512 authentication failed"; @platformatic/kafka: "SASL authentication failed."
    expect(failure.message).toMatch(/SASL (SCRAM SHA512 )?authentication failed/);
    expect(failure.message).not.toContain(wrongPassword);
    expect(JSON.stringify(failure, Object.getOwnPropertyNames(failure))).not.toContain(wrongPassword);
  }, 60_000);

  it('fails the start cleanly on a broker certificate it does not trust', async () => {
    const failure = await startFailure(client, 'untrusted', { ...scram, KAFKA_TLS_CA_FILE: kafkaTls.untrustedCaFile });
    expect(failure.message).toMatch(/self-signed certificate in certificate chain/);
    expect(failure.message).not.toContain(kafkaScram.password);
  }, 90_000);

  it('wrote no password or token to any log line', () => {
    // Only kafkajs logs through the service's logger (its SASL handshakes at debug): @platformatic/kafka logs
    // through the `debug` module (DEBUG=plt:kafka*), so its lines here are the runtime's own.
    if (client === 'kafkajs') expect(lines.some((line) => line.includes('"component":"kafkajs"') && /SASL/.test(line))).toBe(true);
    expect(lines.length).toBeGreaterThan(0);
    for (const secret of [kafkaScram.password, wrongPassword, token, token.split('.')[1]!]) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});
