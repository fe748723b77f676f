import { describe, expect, it } from 'vitest';
import { parseArgs } from './cli.js';
import { parsePerfTest } from './java.js';
import { isFlat } from './scenarios/backlog-memory.js';

describe('parseArgs', () => {
  it('reads the options', () => {
    expect(parseArgs(['--', '--quick', '--scenario', 'passthrough,io-keyed', '--rounds=2', '--out', 'x.json'])).toMatchObject({
      quick: true,
      scenarios: ['passthrough', 'io-keyed'],
      rounds: 2,
      out: 'x.json',
      profile: false,
      producer: 'java',
    });
  });

  it('rejects unknown scenarios and options', () => {
    expect(() => parseArgs(['--scenario', 'nope'])).toThrow(/unknown scenario nope/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown argument --fast/);
    expect(() => parseArgs(['--rounds', '0'])).toThrow(/positive integer/);
  });
});

describe('parsePerfTest', () => {
  it('parses kafka-consumer-perf-test output', () => {
    const out = [
      'SLF4J: Failed to load class "org.slf4j.impl.StaticLoggerBinder".',
      'start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec',
      '2026-11-28 04:27:34:672, 2026-11-28 04:27:36:969, 43.6939, 19.0222, 200284, 87193.7310, 847, 1450, 30.1337, 138126.8966',
    ].join('\n');
    expect(parsePerfTest(out)).toEqual({
      messages: 200284,
      mb: 43.6939,
      mbPerSec: 19.0222,
      msgPerSec: 87193.731,
      rebalanceMs: 847,
      fetchMs: 1450,
      fetchMbPerSec: 30.1337,
      fetchMsgPerSec: 138126.8966,
    });
    expect(() => parsePerfTest('nothing')).toThrow(/cannot parse/);
  });
});

describe('isFlat', () => {
  it('allows max(32 MB, 25 %) of spread', () => {
    expect(isFlat([120, 130, 140, 150])).toBe(true);
    expect(isFlat([120, 160, 180, 200])).toBe(false);
    expect(isFlat([300, 320, 350, 370])).toBe(true);
    expect(isFlat([300, 320])).toBe(false);
  });
});
