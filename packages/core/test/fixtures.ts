import { z } from 'zod';
import { defineTopic, KAFKA_CLIENTS, silentLogger, StreamError, type KafkaClient, type KafkaConnectionOptions, type Transport } from '../src/index.js';
import { selectTransport } from '../src/transport/select.js';

/** Topics the runtime's own tests use. */
export const Payment = z.object({
  id: z.string(),
  account: z.string(),
  amount: z.number().positive(),
  at: z.iso
    .datetime()
    .transform((s) => new Date(s))
    .or(z.date()),
});
export const payments = (name = 'payments', partitions = 3) => defineTopic({ name, key: z.string(), value: Payment, partitions });
export const receipts = (name = 'receipts', partitions = 3) =>
  defineTopic({ name, key: z.string(), value: z.object({ paymentId: z.string(), amount: z.number() }), partitions });

export function payment(i: number, account = `acct-${i % 7}`) {
  return { id: `p-${i}`, account, amount: (i % 100) + 1, at: new Date(1_700_000_000_000 + i).toISOString() };
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds or `timeoutMs` passes. */
export async function eventually(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/**
 * The Kafka clients the in-process integration tests run on, for `describe.each(kafkaClients)`: both, or only
 * the one `KAFKA_CLIENT` names (as the forked workers, test/worker.mjs, read it), so that
 * `KAFKA_CLIENT=platformatic npx vitest run test/x.integration.test.ts` runs one client's half.
 */
export const kafkaClients: readonly KafkaClient[] = clientsUnderTest(process.env.KAFKA_CLIENT);

function clientsUnderTest(chosen: string | undefined): readonly KafkaClient[] {
  if (chosen === undefined || chosen === '') return KAFKA_CLIENTS;
  const client = KAFKA_CLIENTS.find((c) => c === chosen);
  if (client === undefined) throw new StreamError('CONFIG_INVALID', `KAFKA_CLIENT: expected one of ${KAFKA_CLIENTS.join(', ')}, not ${chosen}`);
  return [client];
}

/**
 * A Kafka transport on `brokers` with `client`, built as `createApp({ transport: client, brokers, kafka })`
 * builds it (src/transport/select.ts), for tests that wrap or share a transport. kafkajs logs nowhere.
 */
export function kafkaTransport(
  client: KafkaClient,
  options: { readonly clientId: string; readonly brokers: readonly string[]; readonly kafka?: KafkaConnectionOptions },
): Transport {
  return selectTransport(
    { id: options.clientId, brokers: options.brokers, transport: client, ...(options.kafka === undefined ? {} : { kafka: options.kafka }) },
    silentLogger(),
  );
}
