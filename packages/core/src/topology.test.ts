import { describe, expect, it } from 'vitest';
import { payments, receipts } from '../test/fixtures.js';
import type { AgentOptions } from './agent.js';
import {
  DEFAULT_COMMIT_INTERVAL_MS,
  defaultBufferRecords,
  defaultCommitIntervalMs,
  EXACTLY_ONCE_COMMIT_INTERVAL_MS,
  MIN_BUFFER_RECORDS,
} from './runtime/app-runtime.js';
import { retryStages } from './runtime/retry-topics.js';
import type { AnyTopic } from './topic.js';
import { agentName, checkAgentName, deadLetterTopicName, delayLabel, planTopology, retryTopicName, type AgentEntry } from './topology.js';

const handler = async () => undefined;
const agent = (topic: AnyTopic, options: AgentOptions = {}): AgentEntry => ({
  topic,
  options,
  handler,
  retryStages: retryStages(topic.name, options.retryTopics?.delaysMs ?? []),
});
const stream = (topic: AnyTopic, options: AgentOptions & { prefetch?: number } = {}): AgentEntry => ({
  topic,
  options,
  handler,
  stream: async () => undefined,
  retryStages: [],
});
const plan = (agents: AgentEntry[], outputs?: AnyTopic[]) => planTopology(agents, { appId: 'app', outputs });

describe('topology naming', () => {
  it('names dead-letter and retry topics and agents', () => {
    expect(deadLetterTopicName('orders')).toBe('orders.dlq');
    expect(retryTopicName('orders', 60_000)).toBe('orders.retry.1m');
    expect([3_600_000, 30_000, 5_400_000, 1500].map(delayLabel)).toEqual(['1h', '30s', '90m', '1500ms']);
    expect(agentName('orders')).toBe('orders-agent');
    expect(agentName('orders', 'mailer')).toBe('mailer');
  });
});

describe('planTopology', () => {
  it('resolves the defaults of an agent', () => {
    const [a] = plan([agent(payments())]).agents;
    expect(a).toMatchObject({
      name: 'payments-agent',
      ordering: 'key',
      concurrency: 1,
      retry: { attempts: 3, initialMs: 100, maxMs: 30_000, multiplier: 2, jitter: 0.2 },
      deadLetterTopic: 'payments.dlq',
      exactlyOnce: false,
      retryStages: [],
    });
  });

  it('takes the options an agent gives', () => {
    const topic = payments();
    const [a] = plan([
      agent(topic, { name: 'p', ordering: 'partition', concurrency: 0, retry: { attempts: 5 }, deadLetter: { topic: 'dead' }, exactlyOnce: true }),
    ]).agents;
    expect(a).toMatchObject({ name: 'p', ordering: 'partition', concurrency: 1, retry: { attempts: 5 }, deadLetterTopic: 'dead', exactlyOnce: true });
    expect(plan([agent(topic, { deadLetter: false })]).agents[0]!.deadLetterTopic).toBeNull();
  });

  it('runs a stream agent unordered, its prefetch as concurrency', () => {
    const topic = payments();
    expect(plan([stream(topic, { concurrency: 8, ordering: 'key' })]).agents[0]).toMatchObject({ ordering: 'none', concurrency: 1000 });
    expect(plan([stream(topic, { prefetch: 10 })]).agents[0]).toMatchObject({ ordering: 'none', concurrency: 10 });
  });

  it('sizes the default buffer by what the most demanding agent needs, at least 256 records', () => {
    const topic = payments();
    const needs = (entries: AgentEntry[]) => defaultBufferRecords(plan(entries).agents);
    expect(needs([agent(topic)])).toBe(MIN_BUFFER_RECORDS);
    expect(needs([agent(topic, { concurrency: 1000 })])).toBe(1000);
    expect(needs([stream(topic)])).toBe(1000);
    expect(needs([stream(topic, { prefetch: 10 })])).toBe(MIN_BUFFER_RECORDS);
    // A batch agent: one batch running and the next filling, up to its concurrency (unbounded by default).
    const batch = (batchRecords: number, concurrency = Number.POSITIVE_INFINITY): AgentEntry => ({
      ...agent(topic, { concurrency, ordering: 'none' }),
      batchRecords,
    });
    expect(needs([batch(500)])).toBe(1000);
    expect(needs([batch(500, 600)])).toBe(600);
    expect(needs([agent(topic, { name: 'a' }), batch(2000), agent(topic, { name: 'c', concurrency: 64 })])).toBe(4000);
  });

  it('commits every second by default, every 100 ms once an agent (or one of its retry stages) is exactly-once', () => {
    const interval = (entries: AgentEntry[]) => defaultCommitIntervalMs(plan(entries).exactlyOnceTopics);
    expect(interval([])).toBe(DEFAULT_COMMIT_INTERVAL_MS);
    expect(interval([agent(payments('a')), agent(payments('b'))])).toBe(DEFAULT_COMMIT_INTERVAL_MS);
    expect(interval([agent(payments('a')), agent(payments('b'), { exactlyOnce: true })])).toBe(EXACTLY_ONCE_COMMIT_INTERVAL_MS);
    expect(interval([agent(payments('a'), { exactlyOnce: true, retryTopics: { delaysMs: [1000] } })])).toBe(EXACTLY_ONCE_COMMIT_INTERVAL_MS);
    expect(EXACTLY_ONCE_COMMIT_INTERVAL_MS).toBeLessThan(DEFAULT_COMMIT_INTERVAL_MS);
  });

  it('consumes each agent topic, then its retry topics, once', () => {
    const p = plan([
      agent(payments('a'), { name: 'a1', retryTopics: { delaysMs: [1000, 60_000] } }),
      agent(payments('b')),
      agent(payments('a'), { name: 'a2', retryTopics: { delaysMs: [5000] } }),
    ]);
    expect(p.consumedTopics).toEqual(['a', 'a.retry.1s', 'a.retry.1m', 'b', 'a.retry.5s']);
    expect(p.agents.map((a) => a.retryStages.map((s) => s.topic))).toEqual([['a.retry.1s', 'a.retry.1m'], [], ['a.retry.5s']]);
  });

  it('derives dead-letter and retry topics with their source', () => {
    const p = plan([
      agent(payments('a'), { retryTopics: { delaysMs: [1000] } }),
      agent(payments('b'), { deadLetter: false }),
      agent(payments('c'), { deadLetter: { topic: 'c-dead' } }),
    ]);
    expect([...p.derivedTopics]).toEqual([
      ['a.dlq', 'a'],
      ['a.retry.1s', 'a'],
      ['c-dead', 'c'],
    ]);
  });

  it('declares agent topics and outputs once each', () => {
    const out = receipts('out');
    const p = plan([agent(payments('a')), agent(payments('a'), { name: 'other' })], [out, receipts('out'), payments('a')]);
    expect(p.declaredTopics.map((t) => t.name)).toEqual(['a', 'out']);
    expect(plan([]).declaredTopics).toEqual([]);
  });

  it('commits the topics and retry topics of exactly-once agents in transactions', () => {
    const p = plan([agent(payments('a'), { exactlyOnce: true, retryTopics: { delaysMs: [1000] } }), agent(payments('b'))]);
    expect([...p.exactlyOnceTopics]).toEqual(['a', 'a.retry.1s']);
  });

  it('rejects two agents with one name', () => {
    const topic = payments();
    expect(() => plan([agent(topic), agent(topic)])).toThrow('app app: two agents named payments-agent; give one a `name`');
    expect(() => checkAgentName('app', [agent(topic, { name: 'x' })], agent(payments('other'), { name: 'x' }))).toThrow(/two agents named x/);
    expect(() => checkAgentName('app', [agent(topic)], agent(topic, { name: 'x' }))).not.toThrow();
  });

  it('rejects agents of a topic that disagree on exactlyOnce', () => {
    const topic = payments();
    expect(() => plan([agent(topic, { name: 'x', exactlyOnce: true }), agent(topic, { name: 'y' })])).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: 'agents on payments disagree on exactlyOnce' }),
    );
  });

  it('rejects two agents that would share a retry topic', () => {
    const topic = payments();
    expect(() =>
      plan([agent(topic, { name: 'x', retryTopics: { delaysMs: [1000] } }), agent(topic, { name: 'y', retryTopics: { delaysMs: [5000, 1000] } })]),
    ).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: 'agents x and y would share the retry topic payments.retry.1s: give them different delays' }),
    );
  });
});
