import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTopics, deleteTopics, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The built `stream` command (packages/cli/dist/main.js), run as a user runs it. */
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const { kafkaTls, kafkaScram } = localServers();
const topic = uniqueName('cli-tls');
const dir = mkdtempSync(path.join(tmpdir(), 'cli-tls-'));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with `args` and only the given KAFKA_* variables (none inherited from the test's environment). */
function stream(args: readonly string[], env: Record<string, string>): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KAFKA_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...inherited, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('the stream CLI on a TLS + SASL Kafka', () => {
  beforeAll(async () => {
    await requireServers('kafka', 'kafka-tls');
    await createTopics([{ name: `${topic}.dlq`, partitions: 1 }]);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await deleteTopics([`${topic}.dlq`]);
  });

  it('connects over TLS + SCRAM configured by the services’ variables', async () => {
    const run = await stream(['dlq', 'list', topic], {
      KAFKA_BROKERS: kafkaTls.brokers.join(','),
      KAFKA_TLS_CA_FILE: kafkaTls.caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: kafkaScram.username,
      KAFKA_SASL_PASSWORD: kafkaScram.password,
    });
    expect(run).toMatchObject({ code: 0, stdout: '0 dead letter(s)\n' });
  }, 60_000);

  it('connects over mutual TLS + SCRAM configured by flags, the password from a file', async () => {
    const passwordFile = path.join(dir, 'password');
    writeFileSync(passwordFile, `${kafkaScram.password}\n`);
    const run = await stream(
      [
        'dlq',
        'list',
        topic,
        `--brokers=${kafkaTls.brokers.join(',')}`,
        `--tls-ca-file=${kafkaTls.caFile}`,
        `--tls-cert-file=${kafkaTls.clientCertFile}`,
        `--tls-key-file=${kafkaTls.clientKeyFile}`,
        '--sasl-mechanism=scram-sha-256',
        `--sasl-username=${kafkaScram.username}`,
        `--sasl-password-file=${passwordFile}`,
      ],
      {},
    );
    expect(run).toMatchObject({ code: 0, stdout: '0 dead letter(s)\n' });
  }, 60_000);

  it('connects over TLS + SCRAM on @platformatic/kafka too: KAFKA_CLIENT=platformatic or --kafka-client=platformatic (#19)', async () => {
    const env = {
      KAFKA_BROKERS: kafkaTls.brokers.join(','),
      KAFKA_TLS_CA_FILE: kafkaTls.caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: kafkaScram.username,
      KAFKA_SASL_PASSWORD: kafkaScram.password,
    };
    expect(await stream(['dlq', 'list', topic], { ...env, KAFKA_CLIENT: 'platformatic' })).toMatchObject({ code: 0, stdout: '0 dead letter(s)\n' });
    const passwordFile = path.join(dir, 'password-platformatic');
    writeFileSync(passwordFile, `${kafkaScram.password}\n`);
    const run = await stream(
      [
        'dlq',
        'list',
        topic,
        '--kafka-client=platformatic',
        `--brokers=${kafkaTls.brokers.join(',')}`,
        `--tls-ca-file=${kafkaTls.caFile}`,
        `--tls-cert-file=${kafkaTls.clientCertFile}`,
        `--tls-key-file=${kafkaTls.clientKeyFile}`,
        '--sasl-mechanism=scram-sha-256',
        `--sasl-username=${kafkaScram.username}`,
        `--sasl-password-file=${passwordFile}`,
      ],
      {},
    );
    expect(run).toMatchObject({ code: 0, stdout: '0 dead letter(s)\n' });
    const bad = await stream(['dlq', 'list', topic], { ...env, KAFKA_CLIENT: 'librdkafka' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/KAFKA_CLIENT: expected one of kafkajs, platformatic/);
  }, 90_000);

  it('fails with a clear error and exit 1 on a wrong password or a bad configuration, echoing no secret', async () => {
    const wrong = `wrong-${uniqueName('pw')}`;
    const env = { KAFKA_BROKERS: kafkaTls.brokers.join(','), KAFKA_TLS_CA_FILE: kafkaTls.caFile, KAFKA_SASL_MECHANISM: 'scram-sha-512' };
    const denied = await stream(['dlq', 'list', topic], { ...env, KAFKA_SASL_USERNAME: kafkaScram.username, KAFKA_SASL_PASSWORD: wrong });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^stream: .*SASL SCRAM SHA512 authentication failed/m);
    const incomplete = await stream(['dlq', 'list', topic, '--sasl-mechanism=md5'], { ...env, KAFKA_SASL_PASSWORD: wrong });
    expect(incomplete.code).toBe(1);
    expect(incomplete.stderr).toMatch(/invalid configuration: .*KAFKA_SASL_MECHANISM: expected one of/);
    for (const run of [denied, incomplete]) expect(run.stdout + run.stderr).not.toContain(wrong);
  }, 60_000);
});
