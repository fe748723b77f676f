import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ServerName } from './servers.js';

/** `tools/stack/stack.sh` of this repository (local-stack's `dist/` is three levels below the root). */
const STACK_SCRIPT = fileURLToPath(new URL('../../../tools/stack/stack.sh', import.meta.url));

/** `up` waits until the server is healthy; Elasticsearch can take a while on a busy machine. */
const STACK_TIMEOUT_MS = 180_000;

/**
 * Runs `tools/stack/stack.sh` with `args` (e.g. `['up', '--fresh']`, `['down', 'kafka']`), the stack chosen by
 * `env` (`STREAM_STACK_DATA`, `STACK_*_PORT`; default this process's environment); rejects with its output
 * unless it exits 0.
 *
 * @example
 * await stackCommand(['up', 'redis'], { ...process.env, STREAM_STACK_DATA: '/tmp/other-stack', STACK_REDIS_PORT: '16379' });
 */
export async function stackCommand(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await promisify(execFile)('bash', [STACK_SCRIPT, ...args], { timeout: STACK_TIMEOUT_MS, env, maxBuffer: 16 * 1024 * 1024 });
}

async function stack(action: 'up' | 'down', name: ServerName): Promise<void> {
  await stackCommand([action, name]);
}

/**
 * Stops one server of the local stack (`stack.sh down <name>`, by its pid file). The stack is shared by
 * every test running at the time: keep the outage short and always start it again, with
 * {@link withServerStopped} or a `finally`.
 *
 * @example
 * await stopServer('influxdb');
 */
export function stopServer(name: ServerName): Promise<void> {
  return stack('down', name);
}

/**
 * Starts one server of the local stack again (`stack.sh up <name>`) and waits until it is healthy.
 *
 * @example
 * await startServer('elasticsearch');
 */
export function startServer(name: ServerName): Promise<void> {
  return stack('up', name);
}

/**
 * Stops `name`, runs `during` while it is down, and starts it again whatever happened (resolving once it is
 * healthy). Returns what `during` returned.
 *
 * @example
 * await withServerStopped('elasticsearch', async () => {
 *   await sendMoreQueries();
 *   await setTimeout(3000);
 * });
 */
export async function withServerStopped<T>(name: ServerName, during: () => Promise<T>): Promise<T> {
  await stopServer(name);
  try {
    return await during();
  } finally {
    await startServer(name);
  }
}
