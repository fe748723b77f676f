import { MultipleErrors, NetworkError, ProtocolError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { classifyFailure } from '../../runtime/classify.js';
import { transportError } from './errors.js';

const kafka = { kind: 'dependency', dependency: 'kafka' } as const;

describe('@platformatic/kafka errors (#19)', () => {
  it('wrap into TRANSPORT_FAILED naming the protocol error, and classify as the kafka dependency', () => {
    const notLeader = new MultipleErrors('Received response with error while executing API Produce(v11)', [new ProtocolError('NOT_LEADER_OR_FOLLOWER')]);
    const mapped = transportError('send to orders failed', notLeader, { topic: 'orders' });
    expect(mapped).toMatchObject({ code: 'TRANSPORT_FAILED', context: { topic: 'orders', kafkaError: 'NOT_LEADER_OR_FOLLOWER' } });
    expect(mapped.message).toContain('NOT_LEADER_OR_FOLLOWER');
    expect(classifyFailure(mapped)).toEqual(kafka);
    expect(classifyFailure(transportError('fetch failed', new NetworkError('Connection closed')))).toEqual(kafka);
  });

  it('mark a fenced producer (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) with context.fenced', () => {
    for (const id of ['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH']) {
      const mapped = transportError('commit failed', new MultipleErrors('EndTxn', [new ProtocolError(id)]));
      expect(mapped.context).toMatchObject({ fenced: true, kafkaError: id });
    }
  });

  it('classify a raw client error a handler lets through: retriable ones wait for kafka, others are the record’s fault', () => {
    expect(classifyFailure(new NetworkError('Connection closed'))).toEqual(kafka);
    expect(classifyFailure(new ProtocolError('NOT_LEADER_OR_FOLLOWER'))).toEqual(kafka);
    expect(classifyFailure(new ProtocolError('INVALID_RECORD'))).toEqual({ kind: 'record' });
  });
});
