import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError } from '@platformatic/kafka';
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

  it('name the root causes under the client’s wrappers: a refused password, an untrusted certificate', () => {
    // As the client nests them on a failed connect (metadata retried, every broker tried, SaslAuthenticate refused).
    const connect = (root: Error) =>
      new MultipleErrors('metadata failed 2 times.', [
        new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to 127.0.0.1:9095 failed.', { cause: root })]),
        new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to 127.0.0.1:9095 failed.', { cause: root })]),
      ]);
    const refused = new AuthenticationError('SASL authentication failed.', { cause: new ProtocolError('SASL_AUTHENTICATION_FAILED') });
    expect(transportError('admin connect failed', connect(refused)).message).toBe(
      'admin connect failed: metadata failed 2 times: SASL authentication failed (SASL_AUTHENTICATION_FAILED)',
    );
    const untrusted = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(transportError('admin connect failed', connect(untrusted)).message).toBe(
      'admin connect failed: metadata failed 2 times: self-signed certificate in certificate chain',
    );
    expect(transportError('fetch failed', new NetworkError('Connection closed')).message).toBe('fetch failed: Connection closed');
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
