/**
 * The naming conventions of an app's topology, each spelled out once. Core, the CLI, the fault suite, the
 * benchmarks and the demo all derive dead-letter and retry topic names through these functions, so that a
 * convention changes in one place.
 */

/** `orders` → `orders.dlq`: where an agent's records go when they cannot be processed. */
export function deadLetterTopicName(source: string): string {
  return `${source}.dlq`;
}

/** `60000` → `1m`, `30000` → `30s`, `5400000` → `90m`, `1500` → `1500ms`: the suffix of a retry topic. */
export function delayLabel(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** `orders`, `60000` → `orders.retry.1m`: the delayed-retry stage of `source` that waits `delayMs`. */
export function retryTopicName(source: string, delayMs: number): string {
  return `${source}.retry.${delayLabel(delayMs)}`;
}

/** The agent's name in logs, metrics and errors: its `name` option, else `<topic>-agent`. */
export function agentName(topic: string, name?: string): string {
  return name ?? `${topic}-agent`;
}
