import { errors, type estypes } from '@elastic/elasticsearch';
import { NonRetryableError, toError } from '@stream/core';

/**
 * A failure that may pass: the cluster is down or busy, the index does not exist yet. The agent retries
 * the record with backoff; it is never dead-lettered for this.
 */
export class RetryableSearchError extends Error {
  readonly status: number | undefined;
  readonly type: string | undefined;

  constructor(message: string, options: { status?: number | undefined; type?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RetryableSearchError';
    this.status = options.status;
    this.type = options.type;
  }
}

const MAX_REASON = 300;

function clip(text: string): string {
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text;
}

function isCause(value: unknown): value is estypes.ErrorCause {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

function line(cause: estypes.ErrorCause): string {
  return cause.reason ? `${cause.type}: ${clip(cause.reason)}` : cause.type;
}

/**
 * Elasticsearch's error as one readable line: the error, then the root cause (for a search that failed on
 * every shard, `search_phase_execution_exception` says little; the shard's reason says what to fix).
 * e.g. `search_phase_execution_exception: all shards failed; root cause query_shard_exception: failed to
 * create query: For input string: "red shoe"; caused by number_format_exception: …`.
 */
export function describeCause(cause: estypes.ErrorCause): string {
  const parts = [line(cause)];
  const shardReason: unknown = (cause.failed_shards as { reason?: unknown }[] | undefined)?.[0]?.reason;
  const root = isCause(shardReason) ? shardReason : cause.root_cause?.[0];
  if (root && line(root) !== line(cause)) parts.push(`root cause ${line(root)}`);
  let next = (root ?? cause).caused_by;
  for (let depth = 0; next && depth < 3; depth += 1) {
    parts.push(`caused by ${line(next)}`);
    next = next.caused_by;
  }
  return parts.join('; ');
}

/** Every `type` in an error: the error's, its root causes' and its shard failures'. */
function typesOf(cause: estypes.ErrorCause): Set<string> {
  const types = new Set([cause.type]);
  for (const root of cause.root_cause ?? []) types.add(root.type);
  for (const shard of (cause.failed_shards as { reason?: unknown }[] | undefined) ?? []) if (isCause(shard.reason)) types.add(shard.reason.type);
  return types;
}

/**
 * Whether an answer of Elasticsearch with this status can succeed later:
 * - 404 `index_not_found_exception`: retryable (the index may be created soon);
 * - 408, 429 and 5xx: retryable (timeouts, rejected executions, unavailable shards);
 * - 401 and 403: retryable too. Bad credentials or missing privileges fail every record alike: that is
 *   an outage to fix in the configuration, not a property of the record, so records wait instead of all
 *   going to the dead-letter topic;
 * - every other 4xx (400 query or mapping errors, other 404s): never succeeds, non-retryable.
 */
export function isRetryableStatus(status: number, cause: estypes.ErrorCause | undefined): boolean {
  if (status === 404) return cause !== undefined && typesOf(cause).has('index_not_found_exception');
  if (status === 401 || status === 403 || status === 408 || status === 429) return true;
  if (status >= 500) return true;
  return status < 400;
}

/**
 * Turns an error answer of Elasticsearch (a failed request, or one failed item of an msearch) into what
 * the agent's failure policy understands: a {@link NonRetryableError} naming the ES error type and reason
 * (the record goes to the dead-letter topic with it), or a {@link RetryableSearchError}.
 */
export function searchError(status: number, cause: estypes.ErrorCause | undefined, origin?: unknown): Error {
  const detail = cause ? describeCause(cause) : 'no error body';
  const message = `elasticsearch answered ${status}: ${detail}`;
  const options = { status, type: cause?.type, cause: origin };
  if (isRetryableStatus(status, cause)) return new RetryableSearchError(message, options);
  return new NonRetryableError(message, { cause: origin, context: { status, ...(cause ? { type: cause.type } : {}) } });
}

/**
 * Classifies anything the client threw. Only a definite error answer of Elasticsearch can be
 * non-retryable; connection errors, timeouts, aborted requests, a server that is not Elasticsearch and
 * unreadable answers are all retried.
 */
export function classifyClientError(error: unknown): Error {
  if (error instanceof errors.ResponseError && typeof error.statusCode === 'number') {
    const body: unknown = error.body;
    const cause =
      typeof body === 'object' && body !== null && isCause((body as { error?: unknown }).error) ? (body as { error: estypes.ErrorCause }).error : undefined;
    return searchError(error.statusCode, cause, error);
  }
  if (error instanceof NonRetryableError || error instanceof RetryableSearchError) return error;
  const e = toError(error);
  return new RetryableSearchError(`elasticsearch unavailable: ${e.name}: ${e.message}`, { cause: error });
}

/**
 * A search that answered but not from every shard: the best hit may be on a failed shard, so the answer
 * is not used. Query errors that every shard reports alike are permanent; anything else is retried.
 */
export function shardFailureError(shards: estypes.ShardStatistics): Error {
  const failures = shards.failures ?? [];
  const first = failures[0]?.reason;
  const detail = first ? describeCause(first) : 'no reason given';
  const message = `elasticsearch searched ${shards.successful} of ${shards.total} shards (${shards.failed} failed): ${detail}`;
  const permanent = new Set(['query_shard_exception', 'parse_exception', 'illegal_argument_exception', 'number_format_exception', 'search_parse_exception']);
  const allPermanent = failures.length > 0 && failures.every((f) => permanent.has(f.reason.type));
  return allPermanent
    ? new NonRetryableError(message, { context: { type: first?.type ?? 'shard_failure' } })
    : new RetryableSearchError(message, { type: first?.type });
}
