import { allTopics } from '@stream/contracts';
import { deadLetterTopicName, toError } from '@stream/core';
import { createTopics, EmailSink, runScript, testKafka } from '@stream/local-stack';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Fleet } from './fleet.js';
import { runFault, type Environment, type FaultResult } from './harness.js';
import { resultLine, resultTable } from './report.js';
import { FULL, QUICK, scenarios } from './scenarios.js';
import { FaultStack } from './stack.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    skip: { type: 'string' },
    'keep-stack': { type: 'boolean', default: false },
    'reuse-stack': { type: 'boolean', default: false },
    out: { type: 'string' },
    seed: { type: 'string', default: '11' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout
    .write(`usage: pnpm test:faults [--quick] [--only|--skip kill,kafka,redis,influx,es,email,rebalance,fuzz,hostile,sigterm] [--keep-stack] [--reuse-stack] [--out FILE] [--seed N]
Brings up its own stack (STREAM_STACK_DATA, default /tmp/stream-faults-stack; ports from STACK_*_PORT, default
the usual ones + 10000), runs the four services as processes through each fault, checks from outside, prints
one line per fault and a table, and exits non-zero on any loss, duplicate email or broken guarantee.
`);
  process.exit(0);
}
const out = (line: string) => process.stdout.write(`${line}\n`);
const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA', 'HOOLI'];
const SEARCH_INDEX = 'faults-products';
const EMAIL_TOKEN = 'faults-email-token';

async function main(): Promise<number> {
  const began = Date.now();
  const stack = new FaultStack();
  const servers = stack.serverEnv();
  // The checker and every child read these: the suite's own stack, never the main one.
  Object.assign(process.env, servers);
  const sizes = args.quick ? QUICK : FULL;
  const only = args.only?.split(',').map((s) => s.trim());
  const skip = args.skip?.split(',').map((s) => s.trim()) ?? [];
  const specs = scenarios(sizes).filter((s) => (!only || only.includes(s.slug)) && !skip.includes(s.slug));
  out(
    `▶ fault suite (${args.quick ? 'quick' : 'full'}): ${specs.map((s) => s.slug).join(', ')}; stack in ${stack.env.STREAM_STACK_DATA}, Kafka ${servers.KAFKA_BROKERS}`,
  );
  if (!args['reuse-stack']) await stack.up([], { fresh: true });
  else await stack.up();
  out(`  stack up after ${((Date.now() - began) / 1000).toFixed(0)} s`);
  await createTopics(
    allTopics.flatMap((t) => [
      { name: t.name, partitions: t.partitions ?? 1 },
      { name: deadLetterTopicName(t.name), partitions: t.partitions ?? 1 },
    ]),
  );
  const marketEnd = new Date();
  const marketStart = new Date(marketEnd.getTime() - 30 * 60_000);
  await runScript(
    repo,
    'services/execution-quality/dist/seed-market-data.js',
    ['--symbols', SYMBOLS.join(','), '--points', '1800', '--start', marketStart.toISOString(), '--step-ms', '1000'],
    servers,
    'ignore',
  );
  await runScript(repo, 'services/search-enricher/dist/load-corpus.js', ['--index', SEARCH_INDEX, '--docs', '500', '--recreate'], servers, 'ignore');

  const sink = new EmailSink({ token: EMAIL_TOKEN, latencyMs: 20 });
  const sinkPort = await sink.listen(0);
  const producer = testKafka({ retry: { retries: 3, initialRetryTime: 200 } }).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const logRoot = path.join(stack.env.STREAM_STACK_DATA, 'logs', 'faults', new Date().toISOString().replace(/[:.]/g, '-'));
  let portBase = Number(process.env.FAULTS_PORT_BASE ?? 29_400);
  const env: Environment = {
    stack,
    sink,
    producer,
    brokers: [servers.KAFKA_BROKERS!],
    redisUrl: servers.REDIS_URL!,
    makeFleet: (slug) => {
      const fleet = new Fleet({
        repo,
        serverEnv: servers,
        groupSuffix: slug,
        emailUrl: `http://127.0.0.1:${sinkPort}/`,
        emailToken: EMAIL_TOKEN,
        searchIndex: SEARCH_INDEX,
        logDir: path.join(logRoot, slug),
        portBase,
      });
      portBase += 200;
      return fleet;
    },
    market: { start: marketStart, end: marketEnd },
    symbols: SYMBOLS,
    seed: Number(args.seed),
    stallMs: args.quick ? 30_000 : 60_000,
  };
  out(`  services on the ${process.env.KAFKA_CLIENT ?? 'kafkajs'} Kafka client (KAFKA_CLIENT); their logs in ${logRoot}\n`);

  const results: FaultResult[] = [];
  try {
    for (const spec of specs) {
      const result = await runFault(env, spec).catch((error: unknown): FaultResult => ({
        title: spec.title,
        recordsIn: 0,
        processed: 0,
        lost: 0,
        duplicates: 0,
        deadLettered: 0,
        recoverMs: null,
        durationMs: 0,
        problems: [`the fault could not run: ${toError(error).message}`],
        notes: [],
      }));
      results.push(result);
      out(resultLine(result));
      for (const note of result.notes) out(`      ${note}`);
      for (const problem of result.problems) out(`      ✗ ${problem}`);
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
    await sink.close();
    if (!args['keep-stack']) await stack.down().catch((e: unknown) => out(`stack down failed: ${toError(e).message}`));
  }
  const table = resultTable(results);
  const total = `${((Date.now() - began) / 60_000).toFixed(1)} min`;
  out(`\n${table}\n\n${results.every((r) => r.problems.length === 0) ? '✓ every fault passed' : '✗ some faults failed'} (${total})`);
  if (args.out)
    writeFileSync(
      args.out,
      `${table}\n\nRun: ${new Date().toISOString()}, ${args.quick ? 'quick' : 'full'}, ${total} in all.\n\n${results.map((r) => `- ${r.title}: ${[...r.notes, ...r.problems].join('; ')}`).join('\n')}\n`,
    );
  return results.every((r) => r.problems.length === 0) && results.length > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`faults: ${toError(error).stack ?? toError(error).message}\n`);
    process.exit(1);
  },
);
