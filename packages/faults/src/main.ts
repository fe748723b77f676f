import { allTopics } from '@stream/contracts';
import { createApp, deadLetterTopicName, KAFKA_CLIENTS, silentLogger, toError, type KafkaClient } from '@stream/core';
import { createTopics, EmailSink, runScript, testKafka } from '@stream/local-stack';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Fleet } from './fleet.js';
import { Phases, phaseLine, runFault, type Environment, type FaultResult, type FaultSpec } from './harness.js';
import { phaseTotals, resultLine, resultTable } from './report.js';
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
    .write(`usage: pnpm test:faults [--quick] [--only|--skip kill,kafka,restore,redis,influx,es,email,rebalance,fuzz,hostile,sigterm] [--keep-stack] [--reuse-stack] [--out FILE] [--seed N]
Brings up its own stack (STREAM_STACK_DATA, default /tmp/stream-faults-stack; ports from STACK_*_PORT, default
the usual ones + 10000), runs the four services as processes through each fault, checks from outside, prints
one line per fault (PASS, FAIL, or SKIPPED with why: --skip, or a fault the services' Kafka client cannot take
part in, e.g. restore without readPartition) with where its time went, a table, and exits non-zero on any loss,
duplicate email or broken guarantee.
`);
  process.exit(0);
}
const out = (line: string) => process.stdout.write(`${line}\n`);
const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA', 'HOOLI'];
const SEARCH_INDEX = 'faults-products';
const EMAIL_TOKEN = 'faults-email-token';

/** What the services' Kafka client (KAFKA_CLIENT, default kafkajs) can do, as the services' own apps see it. */
function clientCapabilities(brokers: readonly string[]): { client: KafkaClient; readPartition: boolean } {
  const name = process.env.KAFKA_CLIENT ?? 'kafkajs';
  if (!(KAFKA_CLIENTS as readonly string[]).includes(name)) throw new Error(`KAFKA_CLIENT must be one of ${KAFKA_CLIENTS.join(', ')}, not ${name}`);
  const client = name as KafkaClient;
  // Built, never started: the transport connects on first use.
  const app = createApp({ id: 'faults-capabilities', brokers, transport: client, logger: silentLogger() });
  return { client, readPartition: app.transport.readPartition !== undefined };
}

/** Why `spec` cannot run on this client, if it cannot. */
function missing(spec: FaultSpec, capabilities: { client: KafkaClient; readPartition: boolean }): string | undefined {
  if (spec.needs === 'readPartition' && !capabilities.readPartition)
    return `the ${capabilities.client} transport cannot read a partition (readPartition), so execution-quality runs without its summary table`;
  return undefined;
}

async function main(): Promise<number> {
  const began = Date.now();
  const stack = new FaultStack();
  const servers = stack.serverEnv();
  // The checker and every child read these: the suite's own stack, never the main one.
  Object.assign(process.env, servers);
  const sizes = args.quick ? QUICK : FULL;
  const all = scenarios(sizes);
  const only = args.only?.split(',').map((s) => s.trim());
  const skip = args.skip?.split(',').map((s) => s.trim()) ?? [];
  const unknown = [...(only ?? []), ...skip].filter((slug) => !all.some((s) => s.slug === slug));
  if (unknown.length > 0) {
    process.stderr.write(`faults: no fault named ${unknown.join(', ')}; the faults are ${all.map((s) => s.slug).join(', ')}\n`);
    return 2;
  }
  const capabilities = clientCapabilities([servers.KAFKA_BROKERS!]);
  const chosen = all.filter((s) => !only || only.includes(s.slug));
  const skipped = new Map<FaultSpec, string>();
  for (const spec of chosen) {
    if (skip.includes(spec.slug)) skipped.set(spec, `--skip ${spec.slug}`);
    else {
      const why = missing(spec, capabilities);
      if (why !== undefined) skipped.set(spec, why);
    }
  }
  const specs = chosen.filter((s) => !skipped.has(s));
  out(
    `▶ fault suite (${args.quick ? 'quick' : 'full'}): ${specs.map((s) => s.slug).join(', ')}${skipped.size > 0 ? ` (skipped: ${[...skipped.keys()].map((s) => s.slug).join(', ')})` : ''}; stack in ${stack.env.STREAM_STACK_DATA}, Kafka ${servers.KAFKA_BROKERS}`,
  );
  if (specs.length === 0) {
    // Nothing to run: no stack to bring up, and no run to call passed.
    for (const [spec, why] of skipped) out(resultLine({ ...notRun(spec), skipped: why }));
    out('✗ no fault ran');
    return 1;
  }
  const setup = new Phases(began);
  if (!args['reuse-stack']) await stack.up([], { fresh: true });
  else await stack.up();
  setup.mark('stack up');
  await createTopics(
    allTopics.flatMap((t) => [
      { name: t.name, partitions: t.partitions ?? 1 },
      { name: deadLetterTopicName(t.name), partitions: t.partitions ?? 1 },
    ]),
  );
  setup.mark('topics');
  const marketEnd = new Date();
  const marketStart = new Date(marketEnd.getTime() - 30 * 60_000);
  // Independent seeds (InfluxDB, Elasticsearch): side by side.
  await Promise.all([
    runScript(
      repo,
      'services/execution-quality/dist/seed-market-data.js',
      ['--symbols', SYMBOLS.join(','), '--points', '1800', '--start', marketStart.toISOString(), '--step-ms', '1000'],
      servers,
      'ignore',
    ),
    runScript(repo, 'services/search-enricher/dist/load-corpus.js', ['--index', SEARCH_INDEX, '--docs', '500', '--recreate'], servers, 'ignore'),
  ]);
  setup.mark('seed market data and search corpus');

  const sink = new EmailSink({ token: EMAIL_TOKEN, latencyMs: 20 });
  const sinkPort = await sink.listen(0);
  const producer = testKafka({ retry: { retries: 3, initialRetryTime: 200 } }).producer({ idempotent: true, maxInFlightRequests: 1 });
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
  await producer.connect();
  setup.mark('producer');
  out(`  setup: ${phaseLine(setup.list)}`);
  out(`  services on the ${capabilities.client} Kafka client (KAFKA_CLIENT); their logs in ${logRoot}\n`);

  const results: FaultResult[] = [];
  try {
    for (const spec of chosen) {
      const why = skipped.get(spec);
      if (why !== undefined) {
        const result: FaultResult = { ...notRun(spec), skipped: why };
        results.push(result);
        out(resultLine(result));
        continue;
      }
      const result = await runFault(env, spec).catch((error: unknown): FaultResult => ({
        ...notRun(spec),
        problems: [`the fault could not run: ${toError(error).message}`],
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
  const ran = results.filter((r) => r.skipped === undefined);
  const passed = ran.length > 0 && ran.every((r) => r.problems.length === 0);
  const skippedCount = results.length - ran.length;
  out(`\n${table}\n`);
  out(`time by phase, all faults: ${phaseLine(phaseTotals(ran))}; setup ${phaseLine(setup.list)}`);
  out(
    `\n${passed ? `✓ every fault run passed (${ran.length})` : `✗ ${ran.filter((r) => r.problems.length > 0).length} of ${ran.length} faults failed`}${skippedCount > 0 ? `, ${skippedCount} skipped` : ''} (${total})`,
  );
  if (args.out)
    writeFileSync(
      args.out,
      `${table}\n\nRun: ${new Date().toISOString()}, ${args.quick ? 'quick' : 'full'}, ${total} in all.\n\n${results.map((r) => `- ${r.title}: ${[...(r.skipped !== undefined ? [`skipped: ${r.skipped}`] : []), ...r.notes, ...r.problems].join('; ')}`).join('\n')}\n`,
    );
  return passed ? 0 : 1;
}

/** The result of a fault that did not run: nothing counted. */
function notRun(spec: FaultSpec): FaultResult {
  return {
    title: spec.title,
    recordsIn: 0,
    processed: 0,
    lost: 0,
    duplicates: 0,
    deadLettered: 0,
    recoverMs: null,
    durationMs: 0,
    problems: [],
    notes: [],
    phases: [],
  };
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`faults: ${toError(error).stack ?? toError(error).message}\n`);
    process.exit(1);
  },
);
