#!/usr/bin/env node
import { allTopics } from '@stream/contracts';
import { KafkaTransport, loadKafkaConnection, PlatformaticTransport, silentLogger, toError, type Transport } from '@stream/core';
import { parseArgs } from 'node:util';
import { createTopicsCommand, dlqListCommand, dlqReplayCommand, sendCommand, tailCommand } from './commands.js';

const HELP: Record<string, string> = {
  main: `usage: stream <command> [options]

commands:
  send <topic> <json>       validate a record against its contract and send it
  tail <topic>              print a topic's records, decoded
  topics create             create every contract topic and its dead-letter topic (idempotent)
  dlq list <topic>          list a topic's dead letters with their failure headers
  dlq replay <topic>        send dead letters back to their source topic

Every command takes --brokers (default $KAFKA_BROKERS or 127.0.0.1:9092) and --help.
--kafka-client NAME chooses the Kafka client: kafkajs (default) or platformatic (@platformatic/kafka)   KAFKA_CLIENT

Kafka security: the services' variables, or these flags (a flag wins over its variable):
  --tls                        TLS with the system CAs            KAFKA_TLS=on
  --tls-ca-file FILE           CA bundle (PEM)                    KAFKA_TLS_CA_FILE
  --tls-cert-file FILE         client certificate (PEM)           KAFKA_TLS_CERT_FILE
  --tls-key-file FILE          its private key (PEM)              KAFKA_TLS_KEY_FILE
  --sasl-mechanism NAME        plain, scram-sha-256, scram-sha-512, oauthbearer   KAFKA_SASL_MECHANISM
  --sasl-username NAME                                            KAFKA_SASL_USERNAME
  --sasl-password-file FILE    the password, from a file          KAFKA_SASL_PASSWORD_FILE (or KAFKA_SASL_PASSWORD;
                                                                  no flag takes the password itself)
  --sasl-token-file FILE       OAUTHBEARER token file             KAFKA_SASL_OAUTHBEARER_TOKEN_FILE`,
  send: `usage: stream send <topic> <json> [--key KEY] [--header NAME=VALUE]...
Validates <json> against the topic's contract (nothing is sent when it does not fit) and sends it.`,
  tail: `usage: stream tail <topic> [--max N]
Prints the topic's records from the beginning as JSON, decoded with its contract; Ctrl-C stops.`,
  topics: `usage: stream topics create
Creates every topic of @stream/contracts and its <topic>.dlq; existing topics are left as they are.`,
  dlq: `usage: stream dlq list <topic> [--dlq NAME]
       stream dlq replay <topic> [--dlq NAME] [--match REGEX]
list prints each dead letter of <topic> (default <topic>.dlq) with its error headers.
replay sends them back to their source topic with their original key, value and headers; progress is
committed, so a second replay sends only letters that arrived since. --match replays only letters whose
error message matches REGEX and leaves the others for a later replay: in each partition progress is
committed only up to the first letter it skipped, so the letters after that one (matching ones included,
which are then sent again) are read again by the next replay.`,
};

/** The command-line flags that stand for a KAFKA_* variable. */
const KAFKA_FLAGS = {
  'kafka-client': 'KAFKA_CLIENT',
  'tls-ca-file': 'KAFKA_TLS_CA_FILE',
  'tls-cert-file': 'KAFKA_TLS_CERT_FILE',
  'tls-key-file': 'KAFKA_TLS_KEY_FILE',
  'sasl-mechanism': 'KAFKA_SASL_MECHANISM',
  'sasl-username': 'KAFKA_SASL_USERNAME',
  'sasl-token-file': 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE',
} as const;

type Flags = Partial<Record<keyof typeof KAFKA_FLAGS | 'brokers' | 'sasl-password-file', string>> & { tls?: boolean };

/**
 * The transport the flags and the environment describe, checked like a service's (same variables, same
 * errors, no secret echoed). The password comes from the environment or a file, never from a flag value.
 */
function transportFrom(flags: Flags): Transport {
  const env: Record<string, string | undefined> = { ...process.env };
  env.KAFKA_BROKERS = flags.brokers ?? env.KAFKA_BROKERS ?? '127.0.0.1:9092';
  if (flags.tls) env.KAFKA_TLS = 'on';
  for (const [flag, variable] of Object.entries(KAFKA_FLAGS)) {
    const value = flags[flag as keyof typeof KAFKA_FLAGS];
    if (value !== undefined) env[variable] = value;
  }
  const passwordFile = flags['sasl-password-file'];
  if (passwordFile !== undefined) {
    // The flag wins over both password variables.
    env.KAFKA_SASL_PASSWORD = undefined;
    env.KAFKA_SASL_PASSWORD_FILE = passwordFile;
  }
  const kafka = loadKafkaConnection('stream-cli', env);
  if (kafka.client === 'platformatic') {
    return new PlatformaticTransport({
      brokers: kafka.brokers,
      clientId: kafka.clientId,
      ...(kafka.ssl === undefined ? {} : { ssl: kafka.ssl }),
      ...(kafka.sasl === undefined ? {} : { sasl: kafka.sasl }),
    });
  }
  return new KafkaTransport({
    brokers: kafka.brokers,
    clientId: kafka.clientId,
    ...(kafka.ssl === undefined ? {} : { ssl: kafka.ssl }),
    ...(kafka.sasl === undefined ? {} : { sasl: kafka.sasl }),
    logger: silentLogger(),
  });
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      brokers: { type: 'string' },
      'kafka-client': { type: 'string' },
      tls: { type: 'boolean' },
      'tls-ca-file': { type: 'string' },
      'tls-cert-file': { type: 'string' },
      'tls-key-file': { type: 'string' },
      'sasl-mechanism': { type: 'string' },
      'sasl-username': { type: 'string' },
      'sasl-password-file': { type: 'string' },
      'sasl-token-file': { type: 'string' },
      key: { type: 'string' },
      header: { type: 'string', multiple: true },
      max: { type: 'string' },
      dlq: { type: 'string' },
      match: { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  const print = (line: string) => void process.stdout.write(`${line}\n`);
  if (!command || (values.help && !HELP[command])) {
    print(HELP.main!);
    return command ? 0 : 2;
  }
  if (values.help) {
    print(HELP[command]!);
    return 0;
  }
  const transport = transportFrom(values);
  switch (command) {
    case 'send': {
      const [topic, json] = rest;
      if (!topic || !json) break;
      const headers = Object.fromEntries((values.header ?? []).map((h) => [h.slice(0, h.indexOf('=')), h.slice(h.indexOf('=') + 1)]));
      await sendCommand(transport, allTopics, { topic, json, headers, ...(values.key ? { key: values.key } : {}) }, print);
      return 0;
    }
    case 'tail': {
      const [topic] = rest;
      if (!topic) break;
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      await tailCommand(transport, allTopics, { topic, signal: stop.signal, ...(values.max ? { max: Number(values.max) } : {}) }, print);
      return 0;
    }
    case 'topics':
      if (rest[0] !== 'create') break;
      await createTopicsCommand(transport, allTopics, print);
      return 0;
    case 'dlq': {
      const [verb, topic] = rest;
      if (!topic) break;
      const dlq = values.dlq ? { deadLetterTopic: values.dlq } : {};
      if (verb === 'list') {
        const n = await dlqListCommand(transport, { topic, ...dlq }, print);
        print(`${n} dead letter(s)`);
        return 0;
      }
      if (verb === 'replay') {
        await dlqReplayCommand(transport, { topic, ...dlq, ...(values.match ? { match: new RegExp(values.match) } : {}) }, print);
        return 0;
      }
      break;
    }
    default:
      process.stderr.write(`unknown command ${command}\n`);
  }
  process.stderr.write(`${HELP[command] ?? HELP.main!}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`stream: ${toError(error).message}\n`);
    process.exitCode = 1;
  },
);
