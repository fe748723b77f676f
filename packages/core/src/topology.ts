import type { AgentHandler, AgentOptions, Ordering } from './agent.js';
import { StreamError } from './errors.js';
import { resolveRetry, type ResolvedRetry } from './runtime/backoff.js';
import type { RetryStage } from './runtime/retry-topics.js';
import type { StreamAgentFunction } from './stream.js';
import type { AnyTopic } from './topic.js';

/**
 * The naming conventions of an app's topology, each spelled out once. Core, the CLI, the fault suite, the
 * benchmarks and the demo all derive dead-letter and retry topic names through these functions, so that a
 * convention changes in one place. {@link planTopology} applies them to an app's agents before it starts.
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

/** An agent as the app holds it between `app.agent()`/`app.stream()` and `start()`. */
export interface AgentEntry {
  readonly topic: AnyTopic;
  readonly options: AgentOptions & { readonly prefetch?: number };
  readonly handler: AgentHandler<unknown, unknown>;
  /** From `options.retryTopics`, validated when the agent is added. */
  readonly retryStages: readonly RetryStage[];
  /** Set for an `app.stream` agent: `handler` is then unused, the loop consumes the records. */
  readonly stream?: StreamAgentFunction<unknown, unknown>;
  /** A batch agent's `batch.maxRecords` (its `handler` is then the per-record side of the batches). */
  readonly batchRecords?: number;
}

/** One agent's settings, resolved from its options and defaults: what its runners are built from. */
export interface AgentPlan {
  readonly name: string;
  readonly entry: AgentEntry;
  /** Of the main runner; retry stages always keep partition order. */
  readonly ordering: Ordering;
  /** A stream agent's `prefetch` (default 1000), else `concurrency` (at least 1, default 1). */
  readonly concurrency: number;
  /**
   * Records one partition must be able to hold for this agent to run at full speed: its `concurrency` (a
   * stream's prefetch), or for a batch agent two batches (one running, the next filling) up to its
   * concurrency. What the app's default `buffer.maxRecords` is made of.
   */
  readonly bufferRecords: number;
  readonly retry: ResolvedRetry;
  /** Null when `deadLetter: false`. */
  readonly deadLetterTopic: string | null;
  readonly exactlyOnce: boolean;
  readonly retryStages: readonly RetryStage[];
}

/** Everything an app derives from its agents before it touches a broker. */
export interface TopologyPlan {
  /** In the order the agents were added. */
  readonly agents: readonly AgentPlan[];
  /** Source and retry topics whose offsets are committed in a transaction with the outputs. */
  readonly exactlyOnceTopics: ReadonlySet<string>;
  /** What the consumer subscribes to: each agent's topic, then its retry topics, without repeats. */
  readonly consumedTopics: readonly string[];
  /** The agents' topics and the declared outputs, one per name: checked (or created) at start. */
  readonly declaredTopics: readonly AnyTopic[];
  /** Dead-letter and retry topics → the source topic whose partition count they get when created. */
  readonly derivedTopics: ReadonlyMap<string, string>;
}

/** What of the app's options the plan depends on. */
export interface TopologyOptions {
  /** The app's id, for error messages. */
  readonly appId: string;
  readonly outputs?: readonly AnyTopic[] | undefined;
}

/** Throws when `entry` would take the name of one of `agents`: names label logs, metrics and retry ownership. */
export function checkAgentName(appId: string, agents: readonly AgentEntry[], entry: AgentEntry): void {
  const name = entryName(entry);
  if (agents.some((a) => entryName(a) === name)) {
    throw new StreamError('CONFIG_INVALID', `app ${appId}: two agents named ${name}; give one a \`name\``);
  }
}

/**
 * Plans an app's topology: resolves each agent's settings and derives the topics to consume, commit
 * transactionally and create. Pure: no broker is asked. Throws `CONFIG_INVALID` for two agents with one
 * name, agents of a topic disagreeing on `exactlyOnce`, and two agents that would share a retry topic.
 */
export function planTopology(agents: readonly AgentEntry[], options: TopologyOptions): TopologyPlan {
  agents.forEach((entry, i) => checkAgentName(options.appId, agents.slice(0, i), entry));
  const exactlyOnceTopics = new Set<string>();
  for (const topicName of new Set(agents.map((a) => a.topic.name))) {
    const flags = new Set(agents.filter((a) => a.topic.name === topicName).map((a) => a.options.exactlyOnce === true));
    if (flags.size > 1) throw new StreamError('CONFIG_INVALID', `agents on ${topicName} disagree on exactlyOnce`);
    if (flags.has(true)) exactlyOnceTopics.add(topicName);
  }
  // Each agent consumes its own retry topics: two agents of a topic with the same delay would both take
  // each other's retries.
  const retryOwners = new Map<string, string>();
  for (const a of agents) {
    for (const stage of a.retryStages) {
      const name = entryName(a);
      const other = retryOwners.get(stage.topic);
      if (other !== undefined)
        throw new StreamError('CONFIG_INVALID', `agents ${other} and ${name} would share the retry topic ${stage.topic}: give them different delays`);
      retryOwners.set(stage.topic, name);
      if (a.options.exactlyOnce === true) exactlyOnceTopics.add(stage.topic);
    }
  }
  const plans = agents.map(planAgent);
  // Dead-letter and retry topics are created when missing, with the partition count of their source.
  const derivedTopics = new Map<string, string>();
  for (const a of plans) {
    if (a.deadLetterTopic !== null) derivedTopics.set(a.deadLetterTopic, a.entry.topic.name);
    for (const stage of a.retryStages) derivedTopics.set(stage.topic, a.entry.topic.name);
  }
  return {
    agents: plans,
    exactlyOnceTopics,
    consumedTopics: [...new Set(plans.flatMap((a) => [a.entry.topic.name, ...a.retryStages.map((s) => s.topic)]))],
    declaredTopics: [...new Map([...agents.map((a) => a.topic), ...(options.outputs ?? [])].map((t) => [t.name, t])).values()],
    derivedTopics,
  };
}

function entryName(entry: AgentEntry): string {
  return agentName(entry.topic.name, entry.options.name);
}

function planAgent(entry: AgentEntry): AgentPlan {
  const { options } = entry;
  const isStream = entry.stream !== undefined;
  const concurrency = isStream ? (options.prefetch ?? 1000) : Math.max(1, options.concurrency ?? 1);
  return {
    name: entryName(entry),
    entry,
    ordering: isStream ? 'none' : (options.ordering ?? 'key'),
    concurrency,
    bufferRecords: entry.batchRecords === undefined ? concurrency : Math.min(concurrency, 2 * entry.batchRecords),
    retry: resolveRetry(options.retry),
    deadLetterTopic: options.deadLetter === false ? null : (options.deadLetter?.topic ?? deadLetterTopicName(entry.topic.name)),
    exactlyOnce: options.exactlyOnce === true,
    retryStages: entry.retryStages,
  };
}
