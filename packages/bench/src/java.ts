/**
 * The Java side: the Kafka jars of the local stack (located the way tools/stack/servers/kafka.sh does),
 * a small Java producer that writes the data sets fast, and `kafka-consumer-perf-test`
 * (`org.apache.kafka.tools.ConsumerPerformance`) for the broker's own consumer throughput (the ceiling).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the Kafka jars are, and which version they are. */
export interface KafkaLib {
  readonly version: string;
  readonly dir: string;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * `${STREAM_STACK_CACHE:-$HOME/.cache/stream-stack}/kafka/<version>/lib`, the version being
 * `STACK_KAFKA_VERSION` (the stack's default 4.1.1), else the newest one installed.
 */
export function locateKafkaLib(env: NodeJS.ProcessEnv = process.env): KafkaLib {
  const cache = env.STREAM_STACK_CACHE ?? path.join(homedir(), '.cache', 'stream-stack');
  const root = path.join(cache, 'kafka');
  const wanted = env.STACK_KAFKA_VERSION ?? '4.1.1';
  const hasJars = (version: string) => existsSync(path.join(root, version, 'lib'));
  if (hasJars(wanted)) return { version: wanted, dir: path.join(root, wanted, 'lib') };
  const installed = existsSync(root) ? readdirSync(root).filter(hasJars).sort(compareVersions) : [];
  const newest = installed.at(-1);
  if (newest === undefined) {
    throw new Error(`no Kafka jars in ${root}/<version>/lib: run \`pnpm stack up\` (it installs them), or set STREAM_STACK_CACHE`);
  }
  return { version: newest, dir: path.join(root, newest, 'lib') };
}

function run(command: string, args: readonly string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const tail = stderr
          .split('\n')
          .filter((l) => l.length > 0 && !l.startsWith('SLF4J'))
          .slice(-10)
          .join('\n');
        reject(new Error(`${path.basename(command)} ${args.filter((a) => !a.includes('/')).join(' ')} failed: ${error.message}\n${tail}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

const JAVA = process.env.STACK_JAVA ?? 'java';
const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'java', 'BenchProducer.java');

/** Compiles BenchProducer.java once per source version (cached in the temp dir) and returns the class dir. */
export async function compileProducer(lib: KafkaLib): Promise<string> {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).update(lib.version).digest('hex').slice(0, 12);
  const dir = path.join(tmpdir(), 'stream-bench-java', hash);
  if (existsSync(path.join(dir, 'BenchProducer.class'))) return dir;
  mkdirSync(dir, { recursive: true });
  const javac = process.env.STACK_JAVA ? path.join(path.dirname(process.env.STACK_JAVA), 'javac') : 'javac';
  await run(javac, ['-cp', `${lib.dir}/*`, '-d', dir, SOURCE], 120_000);
  return dir;
}

/** Produces the lines of `file` (see BenchProducer.java) to `topic`. */
export async function produceWithJava(lib: KafkaLib, classes: string, bootstrap: string, topic: string, file: string, records: number): Promise<void> {
  const timeoutMs = 60_000 + records / 5; // generous: ~100k records/s is typical
  const { stdout } = await run(
    JAVA,
    ['-Xmx384m', '-XX:+UseSerialGC', '-cp', `${lib.dir}/*${path.delimiter}${classes}`, 'BenchProducer', bootstrap, topic, file],
    timeoutMs,
  );
  const match = /produced (\d+) of (\d+) records/.exec(stdout);
  if (!match || Number(match[1]) !== records) throw new Error(`BenchProducer wrote ${match?.[1] ?? '?'} of ${records} records to ${topic}: ${stdout.trim()}`);
}

/** What `kafka-consumer-perf-test` reported. */
export interface PerfTestResult {
  readonly messages: number;
  readonly mb: number;
  readonly mbPerSec: number;
  readonly msgPerSec: number;
  readonly rebalanceMs: number;
  readonly fetchMs: number;
  readonly fetchMbPerSec: number;
  /** Messages per second of the fetch phase (join excluded): what we compare with, since our own timing starts at the first record too. */
  readonly fetchMsgPerSec: number;
}

/** Parses ConsumerPerformance's CSV-ish output: a header line and a value line. */
export function parsePerfTest(stdout: string): PerfTestResult {
  const lines = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('SLF4J') && !l.startsWith('WARNING'));
  const headerAt = lines.findIndex((l) => l.startsWith('start.time'));
  const header = lines[headerAt]?.split(',').map((s) => s.trim());
  const values = lines[headerAt + 1]?.split(',').map((s) => s.trim());
  if (headerAt < 0 || !header || !values || values.length !== header.length) throw new Error(`cannot parse kafka-consumer-perf-test output:\n${stdout}`);
  const field = (name: string): number => {
    const i = header.indexOf(name);
    const v = i < 0 ? Number.NaN : Number(values[i]);
    if (!Number.isFinite(v)) throw new Error(`kafka-consumer-perf-test output has no ${name}:\n${stdout}`);
    return v;
  };
  return {
    messages: field('data.consumed.in.nMsg'),
    mb: field('data.consumed.in.MB'),
    mbPerSec: field('MB.sec'),
    msgPerSec: field('nMsg.sec'),
    rebalanceMs: field('rebalance.time.ms'),
    fetchMs: field('fetch.time.ms'),
    fetchMbPerSec: field('fetch.MB.sec'),
    fetchMsgPerSec: field('fetch.nMsg.sec'),
  };
}

/** Runs `kafka-consumer-perf-test` on `topic` (a fresh group each time). */
export async function consumerPerfTest(lib: KafkaLib, bootstrap: string, topic: string, messages: number, group: string): Promise<PerfTestResult> {
  const { stdout } = await run(
    JAVA,
    [
      '-Xmx512m',
      '-cp',
      `${lib.dir}/*`,
      'org.apache.kafka.tools.ConsumerPerformance',
      '--bootstrap-server',
      bootstrap,
      '--topic',
      topic,
      '--messages',
      String(messages),
      '--group',
      group,
      '--timeout',
      '30000',
    ],
    180_000,
  );
  return parsePerfTest(stdout);
}
