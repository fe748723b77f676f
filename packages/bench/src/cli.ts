#!/usr/bin/env node
/**
 * `pnpm bench [--quick] [--scenario <name>…] [--rounds N] [--out <file.json>] [--profile] [--list]`
 *
 * Runs the scenarios against the real local Kafka and writes <out>.json, <out>.md and <out>.svg
 * (default bench/results/latest.*, or bench/results/quick.* with --quick). A full run of every scenario
 * also keeps a dated copy of the Markdown (bench/results/full-<date>.md). Missing a target never fails the
 * run; errors and correctness violations (lost records, broken order) do (exit code 1).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { localServers, requireServers, uniqueName } from '@stream/local-stack';
import type { DatasetSpec } from './data.js';
import { datasetFile } from './dataset-file.js';
import { compileProducer, consumerPerfTest, locateKafkaLib, produceWithJava, type PerfTestResult } from './java.js';
import { cleanupRun, createFreshTopics, deleteGroups, produceDataset } from './kafka.js';
import { renderMarkdown, renderSvg, type BenchReport, type MachineInfo } from './report.js';
import { findScenario, scenarios, type Scenario, type ScenarioContext, type ScenarioResult } from './scenarios/index.js';
import type { Ceiling } from './scenarios/types.js';
import { quietTimeoutWarnings } from './warnings.js';
import { median } from './stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

export interface CliArgs {
  readonly quick: boolean;
  readonly scenarios: readonly string[];
  readonly rounds: number | undefined;
  readonly out: string | undefined;
  readonly profile: boolean;
  readonly producer: 'java' | 'kafkajs';
  /** Kafka clients ours runs on in the core scenarios; kafkajs always, first. */
  readonly transports: readonly ('kafkajs' | 'platformatic')[];
  readonly list: boolean;
  readonly help: boolean;
}

const USAGE = `usage: pnpm bench [options]

  --quick             small sizes, 1 round (CI; ~4-5 minutes)
  --scenario <name>   run only this scenario (repeatable, or comma-separated)
  --rounds <n>        rounds per scenario (ours and baseline alternate; the median is reported)
  --out <file.json>   where to write the JSON; .md and .svg go next to it
                      (default bench/results/latest.json, bench/results/quick.json with --quick)
  --profile           run the consumer children with --cpu-prof (profiles in bench/results/profiles/)
  --producer <p>      how input data is written: java (default, fast) or kafkajs
  --transports <list> Kafka clients ours runs on in the core scenarios, alternating
                      in each round on the same data: kafkajs,platformatic (default) or kafkajs
  --list              list the scenarios
  --help`;

/** Parses the command line (throws with the usage on anything unknown). */
export function parseArgs(argv: readonly string[]): CliArgs {
  let quick = false;
  let rounds: number | undefined;
  let out: string | undefined;
  let profile = false;
  let list = false;
  let help = false;
  let producer: 'java' | 'kafkajs' = 'java';
  let transports: ('kafkajs' | 'platformatic')[] = ['kafkajs', 'platformatic'];
  const names: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value\n\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--':
        break;
      case '--quick':
        quick = true;
        break;
      case '--scenario':
        names.push(
          ...value()
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s.length > 0),
        );
        break;
      case '--rounds': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new Error(`--rounds must be a positive integer\n\n${USAGE}`);
        rounds = n;
        break;
      }
      case '--out':
        out = value();
        break;
      case '--profile':
        profile = true;
        break;
      case '--producer': {
        const p = value();
        if (p !== 'java' && p !== 'kafkajs') throw new Error(`--producer must be java or kafkajs\n\n${USAGE}`);
        producer = p;
        break;
      }
      case '--transports': {
        const given = value()
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
        for (const t of given) if (t !== 'kafkajs' && t !== 'platformatic') throw new Error(`--transports: ${t} is not kafkajs or platformatic\n\n${USAGE}`);
        transports = ['kafkajs', ...(given.includes('platformatic') ? (['platformatic'] as const) : [])];
        break;
      }
      case '--list':
        list = true;
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new Error(`unknown argument ${arg}\n\n${USAGE}`);
    }
  }
  for (const name of names) {
    if (!findScenario(name)) throw new Error(`unknown scenario ${name}: one of ${scenarios.map((s) => s.name).join(', ')}`);
  }
  return { quick, scenarios: names, rounds, out, profile, producer, transports, list, help };
}

function git(args: readonly string[]): string {
  try {
    return execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function machine(kafka: string, loadAvgAtStart: readonly number[]): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpus: list.length,
    totalMemoryMb: Math.round(totalmem() / 1048576),
    os: `${osType()} ${release()}`,
    node: process.version,
    kafka,
    date: new Date().toISOString(),
    loadAvgAtStart,
    loadAvgAtEnd: loadavg(),
  };
}

function log(message: string): void {
  process.stdout.write(`${message}\n`);
}

async function main(): Promise<number> {
  quietTimeoutWarnings();
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    log(USAGE);
    return 0;
  }
  if (args.list) {
    for (const s of scenarios) log(`${s.name.padEnd(20)} ${s.description}`);
    return 0;
  }
  const started = performance.now();
  const loadAvgAtStart = loadavg();
  const commitAtStart = git(['rev-parse', 'HEAD']);
  await requireServers('kafka');
  const brokers = localServers().kafkaBrokers;
  const bootstrap = brokers.join(',');
  const lib = locateKafkaLib();
  const selected: Scenario[] = args.scenarios.length > 0 ? args.scenarios.map((n) => findScenario(n)!) : [...scenarios];
  const invocation = new Date().toISOString().replace(/[:.]/g, '-');
  const logDir = path.join(tmpdir(), `stream-bench-${invocation}`);
  const profileDir = args.profile ? path.join(RESULTS_DIR, 'profiles', invocation) : undefined;
  mkdirSync(logDir, { recursive: true });

  let classes: Promise<string> | undefined;
  const produce = async (topic: string, spec: DatasetSpec): Promise<void> => {
    if (args.producer === 'kafkajs') {
      await produceDataset(topic, spec, 1);
      return;
    }
    classes ??= compileProducer(lib);
    await produceWithJava(lib, await classes, bootstrap, topic, datasetFile(spec), spec.records);
  };

  const ceilings = new Map<string, Promise<Omit<Ceiling, 'oursOverCeiling'>>>();
  const ceiling = (spec: DatasetSpec): Promise<Omit<Ceiling, 'oursOverCeiling'>> => {
    const key = JSON.stringify(spec);
    let found = ceilings.get(key);
    if (!found) {
      found = (async () => {
        const names = { input: uniqueName('bench-ceiling'), output: undefined, groupId: uniqueName('bench-ceiling-group') };
        try {
          await createFreshTopics([{ name: names.input, partitions: spec.partitions }]);
          await produce(names.input, spec);
          const runs: PerfTestResult[] = [];
          for (let i = 0; i < (args.quick ? 1 : 3); i += 1)
            runs.push(await consumerPerfTest(lib, bootstrap, names.input, spec.records, `${names.groupId}-${i}`));
          const result = {
            tool: `kafka-consumer-perf-test (org.apache.kafka.tools.ConsumerPerformance, Kafka ${lib.version})`,
            recordsPerSec: median(runs.map((r) => r.fetchMsgPerSec)),
            recordsPerSecWithJoin: median(runs.map((r) => r.msgPerSec)),
            mbPerSec: median(runs.map((r) => r.fetchMbPerSec)),
            runs,
          };
          log(
            `  ceiling: ${Math.round(result.recordsPerSec).toLocaleString('en-US')} rec/s (fetch phase), ${Math.round(result.recordsPerSecWithJoin).toLocaleString('en-US')} rec/s with join`,
          );
          return result;
        } finally {
          await cleanupRun(names);
          await deleteGroups([0, 1, 2].map((i) => `${names.groupId}-${i}`));
        }
      })();
      ceilings.set(key, found);
    }
    return found;
  };

  log(
    `stream bench (${args.quick ? 'quick' : 'full'}): ${selected.map((s) => s.name).join(', ')} on ${bootstrap}, Kafka ${lib.version}; child logs in ${logDir}`,
  );
  const results: ScenarioResult[] = [];
  const errors: { scenario: string; message: string }[] = [];
  for (const scenario of selected) {
    const rounds = args.rounds ?? (args.quick ? (scenario.defaultRounds?.quick ?? 1) : (scenario.defaultRounds?.full ?? 3));
    const otherTransports = args.transports.filter((t): t is 'platformatic' => t !== 'kafkajs');
    const context: ScenarioContext = { quick: args.quick, rounds, brokers, logDir, profileDir, otherTransports, log, produce, ceiling };
    log(`\n${scenario.name}: ${scenario.description} (${rounds} round${rounds === 1 ? '' : 's'})`);
    const t0 = performance.now();
    try {
      const result = await scenario.run(context);
      results.push({ ...result, rounds, durationSec: (performance.now() - t0) / 1000 });
      for (const t of result.transports ?? []) {
        log(`  => on ${t.transport}: ratio ${t.ratio.toFixed(2)}× the baseline, ${t.overKafkajs.toFixed(2)}× ours on kafkajs (${result.ratioMetric})`);
      }
      log(
        `  => ratio ${result.ratio.toFixed(2)}× (${result.ratioMetric}), target ${result.target}: ${result.targetMet ? 'met' : 'MISSED'}` +
          (result.violations.length > 0 ? `; VIOLATIONS: ${result.violations.join('; ')}` : '') +
          ` [${((performance.now() - t0) / 1000).toFixed(0)} s]`,
      );
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      errors.push({ scenario: scenario.name, message });
      log(`  ERROR: ${message}`);
    }
  }

  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    rounds: args.rounds ?? 'scenario default',
    command: `pnpm bench ${process.argv
      .slice(2)
      .filter((a) => a !== '--')
      .join(' ')}`.trim(),
    machine: machine(lib.version, loadAvgAtStart),
    git: { commitAtStart, commit: git(['rev-parse', 'HEAD']), uncommittedChangesInCore: git(['status', '--porcelain', '--', 'packages/core']).length > 0 },
    scenarios: results,
    errors,
    durationSec: (performance.now() - started) / 1000,
  };
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const jsonFile = args.out ? path.resolve(cwd, args.out) : path.join(RESULTS_DIR, args.quick ? 'quick.json' : 'latest.json');
  const base = jsonFile.replace(/\.json$/, '');
  mkdirSync(path.dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(report));
  writeFileSync(`${base}.svg`, renderSvg(report));
  const written = [jsonFile, `${base}.md`, `${base}.svg`];
  if (!args.quick && args.scenarios.length === 0) {
    const dated = path.join(path.dirname(jsonFile), `full-${report.generatedAt.slice(0, 10)}.md`);
    copyFileSync(`${base}.md`, dated);
    written.push(dated);
  }
  log(
    `\n${renderMarkdown(report)
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .slice(0, 2 + results.length + errors.length)
      .join('\n')}`,
  );
  log(`\nwrote ${written.map((f) => path.relative(cwd, f)).join(', ')} in ${report.durationSec.toFixed(0)} s`);
  const violations = results.flatMap((r) => r.violations.map((v) => `${r.scenario}: ${v}`));
  if (errors.length > 0 || violations.length > 0) {
    log(`FAILED: ${errors.length} scenario error(s), ${violations.length} correctness violation(s)`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
