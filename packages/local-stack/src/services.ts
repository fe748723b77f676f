import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';

/** A service running as its own process, as in production. */
export interface RunningService {
  readonly name: string;
  readonly opsPort: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `services/<name>/dist/main.js` as a child process with `env` on top of this process's environment,
 * its output appended to `<logDir>/<logName ?? name>.log`. `env.OPS_PORT` must name its ops port.
 *
 * @example const s = startService(repo, 'feed-cache', { KAFKA_BROKERS, REDIS_URL, OPS_PORT: '19464' }, '/tmp/logs');
 */
export function startService(repo: string, name: string, env: Record<string, string>, logDir: string, logName: string = name): RunningService {
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${logName}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [path.join(repo, 'services', name, 'dist', 'main.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { name, opsPort: Number(env.OPS_PORT), logFile, child, exited };
}

/** Waits until the service answers `/readyz` with 200; fails early if it exits. */
export async function waitReady(service: RunningService, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void service.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${service.name} exited during start-up; see ${service.logFile}`);
    try {
      const res = await fetch(`http://127.0.0.1:${service.opsPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${service.name} not ready after ${timeoutMs} ms; see ${service.logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, then the exit code (SIGKILL after the grace period). */
export async function stopService(service: RunningService, graceMs = 35_000): Promise<number | null> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.child.exitCode;
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
  const code = await service.exited;
  clearTimeout(timer);
  return code;
}

/** SIGKILL, as a crash or an OOM kill would: nothing is drained, committed or flushed. */
export async function killService(service: RunningService): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill('SIGKILL');
  await service.exited;
}

/**
 * Runs a repository script (`<repo>/<script>`) with this Node, `env` on top of this process's environment,
 * its output shown; rejects unless it exits 0. For the seeding tools (market data, search corpus).
 *
 * @example await runScript(repo, 'services/search-enricher/dist/load-corpus.js', ['--index', 'products'], env);
 */
export function runScript(
  repo: string,
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
  stdout: 'inherit' | 'ignore' = 'inherit',
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repo, script), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', stdout, 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited with ${code}`))));
  });
}
