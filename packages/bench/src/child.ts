/** Runs one consumer in a fresh child process (so RSS is its own) and collects its result over IPC. */
import { fork } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_ENV, type ChildMessage, type ConsumerConfig, type ConsumerResult } from './protocol.js';

const CONSUMERS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'consumers');

/** The consumer programs, compiled to dist/consumers/<name>.js. */
export type ConsumerProgram =
  | 'ours-passthrough'
  | 'kafkajs-passthrough'
  | 'ours-io-keyed'
  | 'kafkajs-io-keyed'
  | 'ours-backlog'
  | 'kafkajs-backlog'
  | 'ours-feed-cache'
  | 'kafkajs-feed-cache'
  | 'ours-order-emailer'
  | 'kafkajs-order-emailer'
  | 'ours-execution-quality'
  | 'kafkajs-execution-quality'
  | 'ours-search-enricher'
  | 'kafkajs-search-enricher'
  | 'ours-table-updates'
  | 'ours-table-restore'
  | 'kafkajs-changelog-read';

export interface ChildOptions {
  /** Where the child's stdout/stderr go. */
  readonly logFile: string;
  /** When set, the child runs with `--cpu-prof` and writes its profile here. */
  readonly profileDir?: string | undefined;
  /** Name of the profile file. */
  readonly profileName?: string | undefined;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Forks `program` with `config`; resolves with its result, rejects with its error (and log tail). */
export async function runChild(program: ConsumerProgram, config: ConsumerConfig, options: ChildOptions): Promise<ConsumerResult> {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const fd = openSync(options.logFile, 'a');
  // Extra Node flags for the consumer children only (experiments, e.g. `--max-old-space-size=96`).
  const execArgv: string[] = (process.env.STREAM_BENCH_CHILD_ARGS ?? '').split(' ').filter((a) => a.length > 0);
  if (options.profileDir) {
    mkdirSync(options.profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`);
    if (options.profileName) execArgv.push(`--cpu-prof-name=${options.profileName}`);
  }
  try {
    return await new Promise<ConsumerResult>((resolve, reject) => {
      const child = fork(path.join(CONSUMERS_DIR, `${program}.js`), [], {
        env: { ...process.env, [CONFIG_ENV]: JSON.stringify(config) },
        execArgv,
        stdio: ['ignore', fd, fd, 'ipc'],
      });
      let message: ChildMessage | undefined;
      // The child enforces its own deadline; this one only catches a child that hangs beyond it.
      const killer = setTimeout(() => child.kill('SIGKILL'), config.deadlineMs + 60_000);
      child.on('message', (m: ChildMessage) => {
        message ??= m;
      });
      child.on('error', (error) => {
        clearTimeout(killer);
        reject(error);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(killer);
        if (message?.type === 'result') resolve(message.result);
        else if (message?.type === 'error') reject(new Error(`${program} failed: ${message.message}\n--- ${options.logFile} ---\n${tail(options.logFile)}`));
        else reject(new Error(`${program} exited (${signal ?? `code ${code}`}) without a result\n--- ${options.logFile} ---\n${tail(options.logFile)}`));
      });
    });
  } finally {
    closeSync(fd);
  }
}
