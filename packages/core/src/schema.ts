import type { StandardSchemaV1 } from '@standard-schema/spec';
import { SchemaValidationError, type ErrorContext, type SchemaIssue } from './errors.js';

/** Any Standard Schema validator: zod, valibot, arktype and others. */
export type Schema<Input = unknown, Output = Input> = StandardSchemaV1<Input, Output>;
/** What a schema accepts (the type you send). */
export type InputOf<S> = S extends StandardSchemaV1 ? StandardSchemaV1.InferInput<S> : never;
/** What a schema produces (the type handlers receive). */
export type OutputOf<S> = S extends StandardSchemaV1 ? StandardSchemaV1.InferOutput<S> : never;

function issuePath(issue: StandardSchemaV1.Issue): string {
  return (issue.path ?? [])
    .map((segment) => (typeof segment === 'object' ? segment.key : segment))
    .map(String)
    .join('.');
}

function outcome<T>(result: StandardSchemaV1.Result<T>, topic: string, part: 'key' | 'value', context: ErrorContext): T {
  if (result.issues) {
    const issues: SchemaIssue[] = result.issues.map((i) => ({ path: issuePath(i), message: i.message }));
    throw new SchemaValidationError(topic, part, issues, context);
  }
  return result.value;
}

/**
 * Validates with a Standard Schema, synchronously when the validator is synchronous (the common case,
 * and the fast path on the consume loop), and throws {@link SchemaValidationError} naming the topic
 * and every bad field.
 */
export function validate<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
  topic: string,
  part: 'key' | 'value',
  context: ErrorContext = {},
): OutputOf<S> | Promise<OutputOf<S>> {
  const result = schema['~standard'].validate(value) as StandardSchemaV1.Result<OutputOf<S>> | Promise<StandardSchemaV1.Result<OutputOf<S>>>;
  if (result instanceof Promise) return result.then((r) => outcome(r, topic, part, context));
  return outcome(result, topic, part, context);
}
