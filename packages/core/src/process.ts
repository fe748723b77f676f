import type { App } from './app.js';
import { toError } from './errors.js';

/** After a stop, how long open handles (a client's socket, a user's timer) may keep the process alive. */
const EXIT_GRACE_MS = 5_000;
/** How often a running app is checked for having failed on its own (its consumer stopped for good). */
const FAILURE_POLL_MS = 500;

/**
 * Starts `app` and runs it until SIGTERM or SIGINT (or until it fails), then stops it gracefully and sets
 * the exit code: 0 after a clean stop, 1 when the shutdown deadline was hit or the app failed. A start-up
 * error ends the process with one line naming what to fix. This is what `app.run()` does.
 */
export async function runUntilSignalled(app: App): Promise<void> {
  try {
    await app.start();
  } catch (error) {
    const e = toError(error);
    app.log.fatal({ err: e }, 'start failed');
    process.stderr.write(`${app.id}: cannot start: ${e.message}\n`);
    process.exitCode = 1;
    return;
  }
  const signal = await new Promise<string>((resolve) => {
    const onSignal = (name: string) => () => resolve(name);
    process.once('SIGTERM', onSignal('SIGTERM'));
    process.once('SIGINT', onSignal('SIGINT'));
    const poll = setInterval(() => {
      if (app.state === 'failed') resolve('failure');
    }, FAILURE_POLL_MS);
    poll.unref();
  });
  app.log.info({ signal }, 'stopping');
  const { timedOut } = await app.stop();
  const code = timedOut || signal === 'failure' ? 1 : 0;
  process.exitCode = code;
  // Everything of ours is closed; a handle left open elsewhere must not turn a stop into a hang that an
  // orchestrator ends with SIGKILL. The timer is unref'd: a process with nothing left exits before it.
  setTimeout(() => {
    app.log.warn({ graceMs: EXIT_GRACE_MS, handles: process.getActiveResourcesInfo() }, 'handles still open after the stop: exiting');
    process.exit(code);
  }, EXIT_GRACE_MS).unref();
}
