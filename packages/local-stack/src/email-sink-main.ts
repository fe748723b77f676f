#!/usr/bin/env node
/**
 * The email sink as a process, for the compose stack (`email-sink`, run from the demo image) and images:check:
 * `node dist/email-sink-main.js`. See {@link EmailSink} for what it answers; it logs one JSON line per email.
 *
 * Environment: PORT (default 8025), HOST (default 0.0.0.0), EMAIL_SINK_TOKEN (optional: when set, POSTs
 * without `Authorization: Bearer $EMAIL_SINK_TOKEN` get 401), EMAIL_SINK_LATENCY_MS (default 0),
 * EMAIL_SINK_FAIL_RATE (0..1, default 0: that share of new emails is answered 503 with Retry-After: 1, to
 * watch the emailer's retries). It remembers the last 1000 emails.
 *
 * Imports only ./email-sink.js (node built-ins), so it runs without local-stack's dependencies installed.
 */
import { EmailSink } from './email-sink.js';

const log = (fields: Readonly<Record<string, unknown>>) =>
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), name: 'email-sink', ...fields })}\n`);

/** A number from the environment, or the default; anything else stops the start with the variable named. */
function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`email-sink: ${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

const token = process.env.EMAIL_SINK_TOKEN;
const sink = new EmailSink({
  ...(token ? { token } : {}),
  latencyMs: numberFromEnv('EMAIL_SINK_LATENCY_MS', 0),
  failRate: numberFromEnv('EMAIL_SINK_FAIL_RATE', 0),
  retain: 1000,
  log,
});
await sink.listen(numberFromEnv('PORT', 8025), process.env.HOST ?? '0.0.0.0');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log({ msg: 'stopping', signal });
    void sink.close().then(() => process.exit(0));
  });
}
