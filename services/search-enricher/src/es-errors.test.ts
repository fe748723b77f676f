import { errors } from '@elastic/elasticsearch';
import { isNonRetryable, NonRetryableError } from '@stream/core';
import { describe, expect, it } from 'vitest';
import { classifyClientError, describeCause, isRetryableStatus, RetryableSearchError, searchError, shardFailureError } from './es-errors.js';

const indexNotFound = { type: 'index_not_found_exception', reason: 'no such index [x]' };
const queryFailed = {
  type: 'search_phase_execution_exception',
  reason: 'all shards failed',
  root_cause: [{ type: 'query_shard_exception', reason: 'failed to create query: For input string: "red shoe"' }],
  failed_shards: [
    {
      shard: 0,
      index: 'x',
      reason: {
        type: 'query_shard_exception',
        reason: 'failed to create query: For input string: "red shoe"',
        caused_by: { type: 'number_format_exception', reason: 'For input string: "red shoe"' },
      },
    },
  ],
};

function responseError(statusCode: number, body: unknown): errors.ResponseError {
  return new errors.ResponseError({ body, statusCode, headers: {}, warnings: null, meta: {} as never });
}

describe('error classification', () => {
  it.each([
    [404, indexNotFound, true],
    [404, { type: 'resource_not_found_exception' }, false],
    [404, undefined, false],
    [400, queryFailed, false],
    [400, { type: 'illegal_argument_exception', reason: 'x' }, false],
    [409, { type: 'x' }, false],
    [401, { type: 'security_exception' }, true],
    [403, { type: 'security_exception' }, true],
    [408, undefined, true],
    [429, { type: 'es_rejected_execution_exception' }, true],
    [500, undefined, true],
    [502, undefined, true],
    [503, { type: 'search_phase_execution_exception' }, true],
  ] as const)('status %i %j retryable: %s', (status, cause, retryable) => {
    expect(isRetryableStatus(status, cause)).toBe(retryable);
    const error = searchError(status, cause);
    expect(isNonRetryable(error)).toBe(!retryable);
    expect(error).toBeInstanceOf(retryable ? RetryableSearchError : NonRetryableError);
  });

  it('names the Elasticsearch error type and the root cause', () => {
    expect(describeCause(queryFailed)).toBe(
      'search_phase_execution_exception: all shards failed; root cause query_shard_exception: failed to create query: For input string: "red shoe"; caused by number_format_exception: For input string: "red shoe"',
    );
    expect(searchError(400, queryFailed).message).toMatch(/^elasticsearch answered 400: search_phase_execution_exception: .*number_format_exception/);
  });

  it('clips long reasons (user text can be long)', () => {
    const message = searchError(400, { type: 'x', reason: 'y'.repeat(5000) }).message;
    expect(message.length).toBeLessThan(400);
  });

  it('classifies what the client throws', () => {
    expect(classifyClientError(responseError(400, { error: queryFailed, status: 400 }))).toBeInstanceOf(NonRetryableError);
    expect(classifyClientError(responseError(404, { error: indexNotFound, status: 404 }))).toBeInstanceOf(RetryableSearchError);
    expect(classifyClientError(responseError(503, {}))).toBeInstanceOf(RetryableSearchError);
    expect(classifyClientError(new errors.ConnectionError('connect ECONNREFUSED'))).toBeInstanceOf(RetryableSearchError);
    expect(classifyClientError(new errors.TimeoutError('Request timed out'))).toBeInstanceOf(RetryableSearchError);
    expect(classifyClientError(new errors.RequestAbortedError('aborted'))).toBeInstanceOf(RetryableSearchError);
    expect(classifyClientError(new errors.ProductNotSupportedError('Elasticsearch', {} as never))).toBeInstanceOf(RetryableSearchError);
    expect(classifyClientError('weird')).toBeInstanceOf(RetryableSearchError);
  });

  it('treats partial shard failures as errors: permanent query errors are not retried', () => {
    const permanent = shardFailureError({
      total: 2,
      successful: 1,
      failed: 1,
      failures: [{ shard: 1, reason: { type: 'query_shard_exception', reason: 'bad' } }],
    });
    expect(permanent).toBeInstanceOf(NonRetryableError);
    expect(permanent.message).toMatch(/searched 1 of 2 shards.*query_shard_exception: bad/);
    const transient = shardFailureError({ total: 2, successful: 1, failed: 1, failures: [{ shard: 1, reason: { type: 'node_disconnected_exception' } }] });
    expect(transient).toBeInstanceOf(RetryableSearchError);
  });
});
