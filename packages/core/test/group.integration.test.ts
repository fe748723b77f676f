import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName } from '@stream/local-stack';
import { kafkaClients } from './fixtures.js';

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url));
const brokers = localServers().kafkaBrokers.join(',');
const topics: string[] = [];

interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(name: string, groupId: string, input: string, output: string, env: Record<string, string> = {}): Promise<Worker> {
  const child = fork(WORKER, [brokers, groupId, input, output, name], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${name} did not join within 30 s`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve({ name, child, exited });
      }
    });
    void exited.then(({ code }) => reject(new Error(`worker ${name} exited with ${code} before it was ready`)));
  });
}

/** Reads every result from the output topic as it arrives: n -> workers that produced it. */
async function watchResults(output: string) {
  const results = new Map<number, string[]>();
  const consumer = testKafka().consumer({ groupId: uniqueName('results-reader'), readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: output, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const { n, worker } = JSON.parse(m.value!.toString()) as { n: number; worker: string };
        results.set(n, [...(results.get(n) ?? []), worker]);
      }
    },
  });
  return { results, stop: () => consumer.disconnect() };
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function produce(topic: string, count: number, start = 0): Promise<void> {
  const producer = testKafka().producer();
  await producer.connect();
  for (let i = start; i < start + count; i += 5000) {
    const messages = Array.from({ length: Math.min(5000, start + count - i) }, (_, j) => ({ key: `k${(i + j) % 1000}`, value: JSON.stringify({ n: i + j }) }));
    await producer.send({ topic, messages });
  }
  await producer.disconnect();
}

// The workers run on the client under test (KAFKA_CLIENT, which test/worker.mjs reads); the input is written and
// the results are read with kafkajs (testKafka) for both.
describe.each(kafkaClients)('a group of app instances on the real Kafka (%s)', (client) => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics));

  // On platformatic the workers join with the KIP-848 protocol (KAFKA_GROUP_PROTOCOL=consumer): there a revocation
  // waits for the revoking member's commits before it is acknowledged, as kafkajs holds its rejoin. The classic
  // protocol cannot on this client (it rejoins by itself at once: the contract's holdsRejoinForRevokingCommits
  // gap), so every rebalance repeats what was in flight at the revoke: on a loaded machine 2,720 records, 2,300
  // of them from rebalances (run it with KAFKA_GROUP_PROTOCOL=classic KAFKA_CLIENT=platformatic to see).
  it('processes 50,000 records while instances join, leave and one is killed: nothing lost', async () => {
    const input = uniqueName('group-in');
    const output = uniqueName('group-out');
    const groupId = uniqueName('group');
    topics.push(
      ...(await createTopics([
        { name: input, partitions: 6 },
        { name: output, partitions: 6 },
      ])),
    );
    const total = 50_000;
    await produce(input, total);
    const watch = await watchResults(output);
    const groupProtocol = client === 'platformatic' ? (process.env.KAFKA_GROUP_PROTOCOL ?? 'consumer') : 'classic';
    const env = { KAFKA_CLIENT: client, KAFKA_GROUP_PROTOCOL: groupProtocol, WORKER_DELAY_MS: '1' };
    const startedAt = Date.now();
    const workers: Worker[] = [];
    const start = async (name: string) => {
      const worker = await startWorker(name, groupId, input, output, env);
      workers.push(worker);
      return worker;
    };
    try {
      const a = await start('a');
      const b = await start('b');
      await until(() => watch.results.size > 5_000, 60_000, '5,000 results');
      const c = await start('c');
      await until(() => watch.results.size > 15_000, 60_000, '15,000 results');
      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
      await until(() => watch.results.size > 25_000, 60_000, '25,000 results');
      const seenBeforeKill = watch.results.size;
      const duplicatedBeforeKill = new Set([...watch.results].filter(([, workers]) => workers.length > 1).map(([n]) => n));
      a.child.kill('SIGKILL');
      await a.exited;
      const a2 = await start('a2');
      await until(() => watch.results.size === total, 120_000, 'every record to be processed');
      for (const w of [c, a2]) w.child.kill('SIGTERM');
      expect((await c.exited).code).toBe(0);
      expect((await a2.exited).code).toBe(0);

      const missing = Array.from({ length: total }, (_, n) => n).filter((n) => !watch.results.has(n));
      expect(missing).toEqual([]);
      const duplicated = [...watch.results].filter(([, workers]) => workers.length > 1);
      // At-least-once: a record may run twice only when its first run was not committed, i.e. it was in flight
      // (or done within the last commit interval) when its worker was killed or its partition moved.
      const pairs = new Map<string, number>();
      for (const [, workers] of duplicated) pairs.set(workers.join('→'), (pairs.get(workers.join('→')) ?? 0) + 1);
      console.log(
        `group test (${client}): ${total} records, ${duplicated.length} processed twice (${[...pairs].map(([p, n]) => `${p}: ${n}`).join(', ')}), ${seenBeforeKill} done before the kill`,
      );
      // What the kill may repeat grows with throughput: what was in flight (32 running per member, plus records
      // whose outputs were not acknowledged yet) and what the killed member finished in one commit interval
      // (200 ms), with room for commits that lag it. So this bound scales with the measured rate; the
      // rebalances are bounded apart below.
      // On KIP-848 a commit refused for a member epoch that just moved (STALE_MEMBER_EPOCH) waits for the next
      // heartbeat answer, paced by the broker (group.consumer.heartbeat.interval.ms, 5 s), and the commits after
      // it wait in line: what the killed member finished in that window runs again too.
      const commitLagSec = groupProtocol === 'consumer' ? 5.2 : 0.2;
      const ratePerSec = total / ((Date.now() - startedAt) / 1000);
      const perKill = ratePerSec * commitLagSec + 500;
      console.log(`group test (${client}): ${Math.round(ratePerSec)} records/s, so the kill may repeat about ${Math.round(perKill)}`);
      expect(duplicated.length).toBeLessThan(Math.max(total * 0.05, 2 * perKill));
      // Only the kill may repeat work: what the killed worker `a` finished since its last commit runs again
      // wherever its partitions go. A revoking member starts nothing new, lets what is in flight finish (up
      // to 3 s) and commits before it rejoins (kafkajs holds the rejoin for it), so a rebalance repeats
      // nothing unless a record outlasts that wait. Before the rejoin waited for that commit, it was refused
      // (ILLEGAL_GENERATION) and one rebalance repeated ~2,000 records here; before the hold, 4,667.
      const rebalanceDuplicates = duplicated.filter(([n, workers]) => duplicatedBeforeKill.has(n) || workers[0] !== 'a').length;
      console.log(`group test (${client}): ${rebalanceDuplicates} of the duplicates came from rebalances, not the kill`);
      expect(rebalanceDuplicates).toBeLessThan(250);
    } finally {
      // A failed wait leaves workers running: they must not outlive the test (their topics are deleted after it).
      for (const w of workers) w.child.kill('SIGKILL');
      await watch.stop();
    }
  }, 300_000);

  it('on SIGTERM, in-flight records complete and are committed, and the process exits 0', async () => {
    const input = uniqueName('term-in');
    const output = uniqueName('term-out');
    const groupId = uniqueName('term');
    topics.push(
      ...(await createTopics([
        { name: input, partitions: 2 },
        { name: output, partitions: 2 },
      ])),
    );
    await produce(input, 200);
    const watch = await watchResults(output);
    try {
      const w = await startWorker('w', groupId, input, output, { KAFKA_CLIENT: client, WORKER_DELAY_MS: '300' });
      try {
        await until(() => watch.results.size > 0, 30_000, 'the first results');
        w.child.kill('SIGTERM');
        expect((await w.exited).code).toBe(0);
      } finally {
        w.child.kill('SIGKILL');
      }
      const admin = testKafka().admin();
      await admin.connect();
      const committed = await admin.fetchOffsets({ groupId, topics: [input] });
      await admin.disconnect();
      const committedTotal = committed[0]!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
      await until(() => watch.results.size >= committedTotal, 10_000, 'results of every committed record');
      // Everything committed has its result, and everything with a result was committed: nothing in flight was lost.
      expect(committedTotal).toBe(watch.results.size);
      expect(committedTotal).toBeGreaterThan(0);
    } finally {
      await watch.stop();
    }
  }, 120_000);
});
