import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { StreamError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { KafkaTransport } from './kafka/index.js';
import { MemoryTransport } from './memory/index.js';
import { PlatformaticTransport } from './platformatic/index.js';
import { selectTransport } from './select.js';

const brokers = ['127.0.0.1:9092'];

/** The CONFIG_INVALID message `build` throws with. */
function configProblem(build: () => unknown): string {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(StreamError);
    expect((error as StreamError).code).toBe('CONFIG_INVALID');
    return (error as Error).message;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('transport selection (#19)', () => {
  it("createApp builds kafkajs by default, @platformatic/kafka with transport: 'platformatic', and keeps a given Transport", () => {
    expect(createApp({ id: 'a', brokers, logger: silentLogger() }).transport).toBeInstanceOf(KafkaTransport);
    expect(createApp({ id: 'a', brokers, transport: 'kafkajs', logger: silentLogger() }).transport).toBeInstanceOf(KafkaTransport);
    const platformatic = createApp({ id: 'a', brokers, transport: 'platformatic', logger: silentLogger() }).transport;
    expect(platformatic).toBeInstanceOf(PlatformaticTransport);
    expect(platformatic.name).toBe('platformatic');
    const memory = new MemoryTransport();
    expect(createApp({ id: 'a', transport: memory, logger: silentLogger() }).transport).toBe(memory);
  });

  it('maps TLS and every SASL mechanism onto the platformatic transport', () => {
    for (const sasl of [
      { mechanism: 'plain', username: 'u', password: 'p' },
      { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
      { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      { mechanism: 'oauthbearer', token: () => 't' },
    ] as const) {
      expect(selectTransport({ id: 'a', brokers, transport: 'platformatic', kafka: { ssl: { ca: 'x' }, sasl } }, silentLogger())).toBeInstanceOf(
        PlatformaticTransport,
      );
    }
  });

  it('refuses an unknown client, missing brokers, and the KIP-848 group protocol on kafkajs with CONFIG_INVALID', () => {
    expect(configProblem(() => selectTransport({ id: 'a', brokers, transport: 'rdkafka' as 'kafkajs' }, silentLogger()))).toMatch(
      /one of kafkajs, platformatic/,
    );
    expect(configProblem(() => selectTransport({ id: 'a', transport: 'platformatic' }, silentLogger()))).toMatch(/give `brokers`/);
    expect(configProblem(() => selectTransport({ id: 'a', brokers, kafka: { groupProtocol: 'consumer' } }, silentLogger()))).toMatch(
      /needs the platformatic transport/,
    );
    expect(
      configProblem(() => selectTransport({ id: 'a', brokers, transport: 'platformatic', kafka: { groupProtocol: 'eager' as 'classic' } }, silentLogger())),
    ).toMatch(/groupProtocol must be/);
    for (const groupProtocol of ['classic', 'consumer'] as const)
      expect(selectTransport({ id: 'a', brokers, transport: 'platformatic', kafka: { groupProtocol } }, silentLogger())).toBeInstanceOf(PlatformaticTransport);
  });
});
