import type { StandardSchemaV1 } from '@standard-schema/spec';
import { StreamError } from './errors.js';
import type { OutputOf } from './schema.js';

/** What one schema made of the environment: its value, or one `NAME: message` line per bad variable. */
export interface ConfigIssues {
  readonly value: unknown;
  readonly problems: readonly string[];
}

/** Validates `env` with `schema` and names each issue by its variable, never by its value. */
export function configIssues(schema: StandardSchemaV1, env: Readonly<Record<string, string | undefined>>): ConfigIssues {
  const result = schema['~standard'].validate({ ...env });
  if (result instanceof Promise) throw new StreamError('CONFIG_INVALID', 'configuration schemas must be synchronous');
  if (!result.issues) return { value: result.value, problems: [] };
  const problems = result.issues.map((issue) => {
    const name = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.') || '(environment)';
    return `${name}: ${issue.message}`;
  });
  return { value: undefined, problems };
}

/** The one error a bad environment throws, listing every problem. */
export function invalidConfiguration(problems: readonly string[]): StreamError {
  return new StreamError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`);
}

/**
 * Reads a service's configuration from the environment, once, into a frozen typed object. A missing or
 * bad variable throws one {@link StreamError} (`CONFIG_INVALID`) whose message names every bad variable
 * and what was expected, e.g. `invalid configuration: KAFKA_BROKERS: expected string, received undefined`.
 * Values are never echoed, so secrets do not end up in logs.
 *
 * @example
 * const config = loadConfig(z.object({ KAFKA_BROKERS: z.string().transform((s) => s.split(',')), HTTP_PORT: z.coerce.number().int() }));
 */
export function loadConfig<S extends StandardSchemaV1>(schema: S, env: Readonly<Record<string, string | undefined>> = process.env): Readonly<OutputOf<S>> {
  const { value, problems } = configIssues(schema, env);
  if (problems.length > 0) throw invalidConfiguration(problems);
  return Object.freeze(value as OutputOf<S>);
}
