import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName } from '@stream/local-stack';
import {
  createApp,
  createService,
  deadLetterTopicName,
  defineTopic,
  retryTopicName,
  silentLogger,
  DEAD_LETTER_HEADERS,
  type Instrumentation,
} from '../src/index.js';
import { kafkaClients, kafkaTransport } from './fixtures.js';

afterAll(() => vi.restoreAllMocks());

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url));
const brokers = [...localServers().kafkaBrokers];
const topics: string[] = [];
const Item = z.object({ n: z.number().int() });

async function produce(topic: string, count: number): Promise<void> {
  const producer = testKafka().producer();
  await producer.connect();
  for (let i = 0; i < count; i += 5000) {
    await producer.send({
      topic,
      messages: Array.from({ length: Math.min(5000, count - i) }, (_, j) => ({ key: `k${(i + j) % 500}`, value: JSON.stringify({ n: i + j }) })),
    });
  }
  await producer.disconnect();
}

/** Counts outputs by their `n` as a read-committed consumer of `output` sees them, from the beginning. */
async function readCommittedCounts(output: string) {
  const counts = new Map<number, number>();
  const reader = testKafka().consumer({ groupId: uniqueName('eos-reader'), readUncommitted: false });
  await reader.connect();
  await reader.subscribe({ topic: output, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      const { n } = JSON.parse(message.value!.toString()) as { n: number };
      counts.set(n, (counts.get(n) ?? 0) + 1);
    },
  });
  return { counts, reader };
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(kafkaClients)('failure policy and exactly-once on the real Kafka (%s)', (client) => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics));

  it('exactly-once: a worker killed with SIGKILL and restarted leaves every output exactly once for read-committed readers', async () => {
    const input = uniqueName('eos-in');
    const output = uniqueName('eos-out');
    const groupId = uniqueName('eos');
    topics.push(
      ...(await createTopics([
        { name: input, partitions: 3 },
        { name: output, partitions: 3 },
      ])),
    );
    const total = 10_000;
    await produce(input, total);
    const { counts, reader } = await readCommittedCounts(output);
    const start = () => {
      const child = fork(WORKER, [brokers.join(','), groupId, input, output, 'w'], {
        stdio: 'ignore',
        env: { ...process.env, KAFKA_CLIENT: client, EXACTLY_ONCE: '1', WORKER_DELAY_MS: '1' },
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, exited };
    };
    try {
      const first = start();
      await until(() => counts.size > 2000, 60_000, '2,000 outputs');
      first.child.kill('SIGKILL');
      await first.exited;
      const second = start();
      await until(() => counts.size === total, 120_000, 'every output');
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
      await new Promise((r) => setTimeout(r, 1000));
      const duplicates = [...counts].filter(([, c]) => c > 1);
      expect(duplicates).toEqual([]);
      expect(counts.size).toBe(total);
    } finally {
      await reader.disconnect();
    }
  }, 240_000);

  it('exactly-once: instances joining and leaving mid-stream leave every output exactly once for read-committed readers', async () => {
    const input = uniqueName('eos-rb-in');
    const output = uniqueName('eos-rb-out');
    const groupId = uniqueName('eos-rb');
    topics.push(
      ...(await createTopics([
        { name: input, partitions: 6 },
        { name: output, partitions: 6 },
      ])),
    );
    const total = 20_000;
    await produce(input, total);
    const { counts, reader } = await readCommittedCounts(output);
    // Each instance commits every 200 ms and works 20 ms per record (32 at once), so every rebalance finds
    // transactions in flight: the moment a partition's new owner must not read its committed offset too early.
    const start = (name: string) => {
      const child = fork(WORKER, [brokers.join(','), groupId, input, output, name], {
        stdio: ['ignore', 'pipe', process.env.WORKER_LOG_LEVEL ? 'inherit' : 'ignore', 'ipc'],
        env: { ...process.env, KAFKA_CLIENT: client, EXACTLY_ONCE: '1', WORKER_DELAY_MS: '20' },
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const ready = new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve()));
      return { child, exited, ready };
    };
    const progress = async (more: number, what: string) => {
      const target = counts.size + more;
      await until(() => counts.size >= Math.min(total, target), 60_000, what);
    };
    const workers = [start('a')];
    try {
      await within(workers[0]!.ready, 60_000, 'instance a to join');
      await progress(2_000, 'outputs of the first instance');
      for (const name of ['b', 'c']) {
        const worker = start(name);
        workers.push(worker);
        await within(worker.ready, 60_000, `instance ${name} to join`);
        await progress(2_000, `outputs after ${name} joined`);
      }
      for (const worker of workers.slice(1)) {
        worker.child.kill('SIGTERM');
        expect(await within(worker.exited, 30_000, 'an instance to exit on SIGTERM')).toBe(0);
        await progress(2_000, 'outputs after an instance left');
      }
      await until(() => counts.size === total, 120_000, 'every output');
      workers[0]!.child.kill('SIGTERM');
      expect(await within(workers[0]!.exited, 30_000, 'the last instance to exit on SIGTERM')).toBe(0);
      await new Promise((r) => setTimeout(r, 1000));
      const duplicates = [...counts].filter(([, c]) => c > 1);
      expect(duplicates).toEqual([]);
      expect(counts.size).toBe(total);
    } finally {
      for (const w of workers) w.child.kill('SIGKILL');
      await reader.disconnect();
    }
  }, 300_000);

  it('run() exits with 0 after a clean stop even when a handle of someone else is left open', async () => {
    const input = uniqueName('leak-in');
    const output = uniqueName('leak-out');
    topics.push(
      ...(await createTopics([
        { name: input, partitions: 1 },
        { name: output, partitions: 1 },
      ])),
    );
    await produce(input, 10);
    const child = fork(WORKER, [brokers.join(','), uniqueName('leak'), input, output, 'w'], {
      stdio: ['ignore', 'pipe', 'ignore', 'ipc'],
      env: { ...process.env, KAFKA_CLIENT: client, WORKER_LEAK_HANDLE: '1' },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await within(
      new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve())),
      30_000,
      'the worker to join',
    );
    child.kill('SIGTERM');
    try {
      expect(await within(exited, 30_000, 'the worker to exit')).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('a poison record lands in the dead-letter topic exactly once with its headers; the records after it are processed', async () => {
    const name = uniqueName('poison');
    topics.push(name, deadLetterTopicName(name));
    const topic = defineTopic({ name, key: z.string(), value: Item, partitions: 1 });
    await createTopics([{ name, partitions: 1 }]);
    await produce(name, 10);
    const done: number[] = [];
    const app = createApp({ id: uniqueName('poison-app'), brokers, transport: client, logger: silentLogger(), commitIntervalMs: 100 });
    app.agent(topic, { retry: { attempts: 3, backoff: { initialMs: 10, maxMs: 50 } } }, async (v) => {
      if (v.n === 4) throw new Error('poison');
      done.push(v.n);
    });
    await app.start();
    await until(() => done.length === 9, 30_000, 'the other nine');
    await app.stop();
    const dlq: { headers: Record<string, string>; value: string }[] = [];
    const reader = testKafka().consumer({ groupId: uniqueName('dlq-reader') });
    await reader.connect();
    await reader.subscribe({ topic: deadLetterTopicName(name), fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        dlq.push({ value: message.value!.toString(), headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])) });
      },
    });
    await until(() => dlq.length >= 1, 20_000, 'the dead letter');
    await new Promise((r) => setTimeout(r, 500));
    await reader.disconnect();
    expect(dlq).toHaveLength(1);
    expect(JSON.parse(dlq[0]!.value)).toEqual({ n: 4 });
    expect(dlq[0]!.headers).toMatchObject({
      [DEAD_LETTER_HEADERS.sourceTopic]: name,
      [DEAD_LETTER_HEADERS.partition]: '0',
      [DEAD_LETTER_HEADERS.offset]: '4',
      [DEAD_LETTER_HEADERS.errorClass]: 'Error',
      [DEAD_LETTER_HEADERS.errorMessage]: 'poison',
      [DEAD_LETTER_HEADERS.attempts]: '3',
      [DEAD_LETTER_HEADERS.appId]: app.id,
    });
  }, 60_000);

  it('delayed retry topics: a failing record waits on <topic>.retry.1s while the partition moves on, then succeeds or is dead-lettered', async () => {
    const name = uniqueName('delayed');
    topics.push(name, deadLetterTopicName(name), retryTopicName(name, 1000));
    await createTopics([{ name, partitions: 2 }]);
    const topic = defineTopic({ name, key: z.string(), value: Item, partitions: 2 });
    await produce(name, 20);
    const done = new Map<number, { at: number; topic: string; attempt: number }>();
    const firstFailure = new Map<number, number>();
    const app = createApp({ id: uniqueName('delayed-app'), brokers, transport: client, logger: silentLogger(), commitIntervalMs: 100 });
    app.agent(topic, { concurrency: 4, retry: { attempts: 1 }, retryTopics: { delaysMs: [1000] } }, async (v, ctx) => {
      // 3 fails once (then succeeds on the retry topic); 7 fails every time.
      if ((v.n === 3 && ctx.attempt === 1) || v.n === 7) {
        if (!firstFailure.has(v.n)) firstFailure.set(v.n, Date.now());
        throw new Error(`n=${v.n} is not ready`);
      }
      done.set(v.n, { at: Date.now(), topic: ctx.topic, attempt: ctx.attempt });
    });
    await app.start();
    try {
      await until(() => done.size === 19, 30_000, 'the 19 records that can succeed');
      expect(done.get(3)).toMatchObject({ topic: retryTopicName(name, 1000), attempt: 2 });
      expect(done.get(3)!.at - firstFailure.get(3)!).toBeGreaterThanOrEqual(950);
      // The rest did not wait for it.
      expect(Math.max(...[...done].filter(([n]) => n !== 3).map(([, d]) => d.at))).toBeLessThan(done.get(3)!.at);
      const admin = kafkaTransport(client, { brokers, clientId: 'delayed-check' }).admin();
      await admin.connect();
      try {
        expect(await admin.endOffsets(retryTopicName(name, 1000))).toHaveLength(2);
        await until(
          async () => (await admin.endOffsets(deadLetterTopicName(name))).reduce((sum, o) => sum + Number(o.offset), 0) === 1,
          20_000,
          'the dead letter of n=7',
        );
      } finally {
        await admin.disconnect();
      }
    } finally {
      await app.stop();
    }
    const dlq: Record<string, string>[] = [];
    const reader = testKafka().consumer({ groupId: uniqueName('delayed-dlq') });
    await reader.connect();
    await reader.subscribe({ topic: deadLetterTopicName(name), fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => void dlq.push(Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))),
    });
    await until(() => dlq.length === 1, 20_000, 'reading the dead letter');
    await reader.disconnect();
    expect(dlq[0]).toMatchObject({
      [DEAD_LETTER_HEADERS.sourceTopic]: name,
      [DEAD_LETTER_HEADERS.attempts]: '2',
      [DEAD_LETTER_HEADERS.errorMessage]: 'n=7 is not ready',
    });
  }, 90_000);

  it('the ops server reports the counts the test produced, readiness and health', async () => {
    const name = uniqueName('metrics');
    topics.push(name, deadLetterTopicName(name));
    await createTopics([{ name, partitions: 2 }]);
    const topic = defineTopic({ name, key: z.string(), value: Item, partitions: 2 });
    const service = createService({ id: uniqueName('metrics-app'), brokers, transport: client, opsPort: 0, logger: silentLogger(), commitIntervalMs: 100 });
    service.app.agent(topic, { name: 'counter', retry: { attempts: 2, backoff: { initialMs: 5, maxMs: 5 } } }, async (v) => {
      if (v.n % 10 === 0) throw new Error('every tenth fails');
    });
    const running = service.run();
    await until(() => service.opsPort !== undefined && service.app.ready, 30_000, 'the service to be ready');
    const base = `http://127.0.0.1:${service.opsPort}`;
    await produce(name, 50);
    await until(
      async () => (await (await fetch(`${base}/metrics`)).text()).includes(`stream_records_dead_lettered_total{agent="counter",topic="${name}"} 5`),
      30_000,
      'metrics',
    );
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain(`stream_records_processed_total{agent="counter",topic="${name}"} 45`);
    expect(metrics).toContain(`stream_records_retried_total{agent="counter",topic="${name}"} 5`);
    expect(metrics).toContain(`stream_records_failed_total{agent="counter",topic="${name}",error="Error"} 10`);
    expect(metrics).toMatch(/stream_handler_duration_seconds_count\{agent="counter",topic="[^"]+"\} 45/);
    expect(metrics).toContain('stream_consumer_lag{');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok', problems: [] });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    // run() arms an unref'd exit timer (5 s) after the stop, for handles someone else left open: in vitest's
    // worker, which keeps handles of its own, it would end the file's later tests. It exits nothing here.
    vi.spyOn(process, 'exit').mockImplementation(() => undefined as never);
    process.emit('SIGTERM');
    await running;
    expect(process.exitCode).toBe(0);
    process.exitCode = undefined;
  }, 60_000);

  it('talks SASL/SCRAM to a secured listener, and a wrong password fails the start with a clear error', async () => {
    const { kafkaSaslBrokers, kafkaScram } = localServers();
    const name = uniqueName('scram');
    topics.push(name, deadLetterTopicName(name));
    await createTopics([{ name, partitions: 1 }]);
    const topic = defineTopic({ name, key: z.string(), value: Item, partitions: 1 });
    const seen: number[] = [];
    const app = createApp({
      id: uniqueName('scram-app'),
      transport: kafkaTransport(client, {
        brokers: kafkaSaslBrokers,
        clientId: 'scram-test',
        kafka: { sasl: { mechanism: 'scram-sha-256', username: kafkaScram.username, password: kafkaScram.password } },
      }),
      logger: silentLogger(),
    });
    app.agent(topic, async (v) => void seen.push(v.n));
    await app.start();
    await app.send(topic, { key: 'a', value: { n: 42 } });
    await until(() => seen.length === 1, 30_000, 'the record over SCRAM');
    await app.stop();
    expect(seen).toEqual([42]);

    const bad = createApp({
      id: uniqueName('scram-bad'),
      transport: kafkaTransport(client, {
        brokers: kafkaSaslBrokers,
        clientId: 'scram-bad',
        kafka: { sasl: { mechanism: 'scram-sha-256', username: kafkaScram.username, password: 'wrong-password' } },
      }),
      logger: silentLogger(),
    });
    bad.agent(topic, async () => undefined);
    const failure = await bad.start().then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(failure?.message).toMatch(/SASL|authentication/i);
    expect(failure?.message).not.toContain('wrong-password');
  }, 60_000);
});

// The slow handler waits 15 s on either client: the two runs share that wait (concurrent, each its own topic and group).
describe('a slow handler on the real Kafka', () => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics));

  it.concurrent.for(kafkaClients)(
    'a handler that waits far past the session timeout does not get the consumer evicted (%s)',
    { timeout: 60_000 },
    async (client, { expect }) => {
      const name = uniqueName('slow');
      topics.push(name, deadLetterTopicName(name));
      await createTopics([{ name, partitions: 2 }]);
      const topic = defineTopic({ name, key: z.string(), value: Item, partitions: 2 });
      let revocations = 0;
      const instrumentation: Instrumentation = {
        processed: () => undefined,
        failed: () => undefined,
        retried: () => undefined,
        deadLettered: () => undefined,
        inFlight: () => undefined,
        committed: () => undefined,
        fetched: () => undefined,
        revoked: () => void (revocations += 1),
        dependency: () => undefined,
      };
      const done: number[] = [];
      const app = createApp({
        id: uniqueName('slow-app'),
        brokers,
        transport: client,
        logger: silentLogger(),
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 1000,
        instrumentation,
      });
      app.agent(topic, { concurrency: 4 }, async (v) => {
        if (v.n === 0) await new Promise((r) => setTimeout(r, 15_000));
        done.push(v.n);
      });
      await app.start();
      await produce(name, 20);
      await until(() => done.length === 20, 40_000, 'all records, the slow one included');
      expect(revocations).toBe(0);
      await app.stop();
    },
  );
});
