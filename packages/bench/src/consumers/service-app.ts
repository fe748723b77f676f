/**
 * Ours, per-service scenarios: a real `createApp` running a service's own agent code, unchanged. The app is
 * handed to the service's agent function through {@link recordingApp}, which wraps each agent handler so
 * that the Recorder sees every record once its handler (the service's code) finished.
 */
import {
  createApp,
  createLogger,
  type AgentHandler,
  type AgentOptions,
  type AnyTopic,
  type App,
  type BatchAgentOptions,
  type BatchHandler,
  type Instrumentation,
  type KeyOf,
  type ValueOf,
} from '@stream/core';
import type { ConsumerConfig } from '../protocol.js';
import { stampOf } from '../service-data.js';
import type { Recorder } from './harness.js';
import { benchInstrumentation, bufferOverride, fetchOverride } from './instrumentation.js';

/** A value of the run's service parameters (`ConsumerConfig.service`), which must be there. */
export function param(config: ConsumerConfig, name: string): string {
  const value = config.service?.[name];
  if (value === undefined) throw new Error(`${config.scenario}: service parameter ${name} is missing`);
  return String(value);
}

/**
 * The app of a per-service consumer. With `exactlyOnce`, outputs become visible when their partition's
 * transaction commits with the offsets, so the run completes when the committed offsets cover every
 * input record (use the `explicit` completion). With `acknowledged`, an agent's `ctx.send` resolves before
 * the broker acknowledged the output, so the run completes when every record was processed, i.e. its
 * sends acknowledged (use the `explicit` completion too); otherwise when every record was handled.
 * `restoring` sees each table partition's restore progress (the instrumentation's `restoring`).
 */
export function serviceApp(
  config: ConsumerConfig,
  recorder: Recorder,
  options: {
    readonly outputs?: readonly AnyTopic[];
    readonly exactlyOnce?: boolean;
    readonly acknowledged?: boolean;
    readonly restoring?: Instrumentation['restoring'];
    /** Keeps the app's tables in a persistent local store there too (`AppOptions.stateDir`). */
    readonly stateDir?: string;
    /** The service's own app settings (e.g. its fetch size), as its main.ts gives them. */
    readonly maxBytesPerPartition?: number;
  } = {},
): App {
  const committed = new Map<number, number>();
  let processed = 0;
  const instrumentation = benchInstrumentation(
    recorder,
    (partition, offset) => {
      if (!options.exactlyOnce) return;
      committed.set(partition, offset);
      let total = 0;
      for (const o of committed.values()) total += o;
      if (total >= config.expected && recorder.allHandled) recorder.complete();
    },
    options.acknowledged
      ? () => {
          processed += 1;
          if (processed >= config.expected && recorder.allHandled) recorder.complete();
        }
      : undefined,
  );

  return createApp({
    id: config.groupId,
    brokers: [...config.brokers],
    transport: config.transport ?? 'kafkajs',
    logger: createLogger({ name: 'bench-ours', level: 'warn' }),
    ...bufferOverride(),
    ...(options.maxBytesPerPartition === undefined ? {} : { maxBytesPerPartition: options.maxBytesPerPartition }),
    ...fetchOverride(),
    ...(options.outputs ? { outputs: [...options.outputs] } : {}),
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
    instrumentation: options.restoring ? { ...instrumentation, restoring: options.restoring } : instrumentation,
  });
}

/**
 * `app` as the service's agent function sees it, except that `agent(topic, options, handler)` (the form the
 * services use) registers a handler that reports each record to `recorder` once the service's handler
 * resolved (for a batch agent: each record its batch handler did not fail). Everything else is the app itself.
 */
export function recordingApp(app: App, recorder: Recorder): App {
  const agent = <T extends AnyTopic>(
    topic: T,
    options: AgentOptions | BatchAgentOptions,
    handler: AgentHandler<KeyOf<T>, ValueOf<T>> | BatchHandler<KeyOf<T>, ValueOf<T>>,
  ): App => {
    if ('batch' in options) {
      const batchHandler = handler as BatchHandler<KeyOf<T>, ValueOf<T>>;
      return app.agent(topic, options, async (records, batch) => {
        recorder.begin();
        const outcomes = await batchHandler(records, batch);
        records.forEach(({ value }, i) => {
          if (outcomes?.[i] !== undefined) return;
          const { seq, producedAt } = stampOf(value);
          recorder.handled(seq, producedAt);
        });
        return outcomes;
      });
    }
    const recordHandler = handler as AgentHandler<KeyOf<T>, ValueOf<T>>;
    return app.agent(topic, options, async (value, ctx) => {
      recorder.begin();
      await recordHandler(value, ctx);
      const { seq, producedAt } = stampOf(value);
      recorder.handled(seq, producedAt);
    });
  };
  return new Proxy(app, {
    get(target, property) {
      if (property === 'agent') return agent;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
