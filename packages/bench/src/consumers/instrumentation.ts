/** Shared set-up of our consumers. An Instrumentation that counts fetched batches (and lets exactly-once see commits). */
import type { Instrumentation } from '@stream/core';
import { count, type Recorder } from './harness.js';

export function benchInstrumentation(recorder: Recorder, onCommitted?: (partition: number, offset: number) => void, onProcessed?: () => void): Instrumentation {
  const noop = () => undefined;
  return {
    // A record is processed once its handler returned and every send of it was acknowledged.
    processed: onProcessed ?? noop,

    failed: noop,
    retried: noop,
    deadLettered: noop,
    inFlight: noop,
    revoked: noop,
    dependency: noop,
    // Called once per fetched batch the transport hands to the runtime (whether it accepts all of it or not).
    fetched: () => count(recorder, 'batchesFetched'),
    committed: (_topic, partition, offset) => onCommitted?.(partition, offset),
  };
}

/**
 * Diagnostics only: `STREAM_BENCH_BUFFER_MAX_RECORDS=<n>` sets our apps' `buffer.maxRecords` (default 1,000
 * per partition) to test how the buffer size limits a scenario. The reported runs leave it unset.
 */
export function bufferOverride(): { buffer?: { maxRecords: number } } {
  const n = Number(process.env.STREAM_BENCH_BUFFER_MAX_RECORDS);
  return Number.isInteger(n) && n > 0 ? { buffer: { maxRecords: n } } : {};
}

/** Diagnostics only: `STREAM_BENCH_MAX_BYTES_PER_PARTITION=<n>` sets our apps' fetch size per partition. */
export function fetchOverride(): { maxBytesPerPartition?: number } {
  const n = Number(process.env.STREAM_BENCH_MAX_BYTES_PER_PARTITION);
  return Number.isInteger(n) && n > 0 ? { maxBytesPerPartition: n } : {};
}

/** Diagnostics only: `STREAM_BENCH_CONCURRENCY=<n>` overrides our agents' concurrency (or stream prefetch). */
export function concurrency(configured: number): number {
  const n = Number(process.env.STREAM_BENCH_CONCURRENCY);
  return Number.isInteger(n) && n > 0 ? n : configured;
}
