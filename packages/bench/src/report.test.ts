import { describe, expect, it } from 'vitest';
import { renderMarkdown, renderSvg, type BenchReport } from './report.js';
import type { RoundMeasurement, SideSummary } from './scenarios/types.js';

const round: RoundMeasurement = {
  round: 1,
  handled: 10,
  distinct: 10,
  duplicates: 0,
  setupMs: 100,
  durationMs: 1000,
  recordsPerSec: 10,
  p50Ms: 5,
  p99Ms: 9,
  maxLatencyMs: 10,
  peakRssMb: 100,
  maxRssMb: 100,
  rssAtProgressMb: [90, 95, 98, 100],
  memoryAtProgressMb: [],
  rssSamples: 20,
  orderViolations: null,
  cpuMs: 50,
  cpuMsPer1kRecords: 5000,
  diagnostics: { batchesFetched: 2 },
  stopMs: 10,
  loadAvg1: 1,
  coreBuild: 'b1',
};
const side = (label: string, recordsPerSec: number): SideSummary => ({
  label,
  recordsPerSec,
  p50Ms: 5,
  p99Ms: 9,
  peakRssMb: 100,
  cpuMsPer1kRecords: 5,
  rounds: [round],
});

const report: BenchReport = {
  generatedAt: '2026-01-01T00:00:00.000Z',
  mode: 'quick',
  rounds: 1,
  command: 'pnpm bench --quick',
  machine: {
    cpuModel: 'cpu',
    cpus: 2,
    totalMemoryMb: 1024,
    os: 'Linux',
    node: 'v24',
    kafka: '4.1.1',
    date: '2026-01-01',
    loadAvgAtStart: [1, 1, 1],
    loadAvgAtEnd: [1, 1, 1],
  },
  git: { commitAtStart: 'abc', commit: 'abc', uncommittedChangesInCore: false },
  scenarios: [
    {
      scenario: 'passthrough',
      title: 'P',
      params: {},
      ours: side('ours', 900),
      baseline: side('base', 1000),
      ratio: 0.9,
      ratioMetric: 'recordsPerSec',
      target: '≥ 0.9× kafkajs baseline records/s',
      targetMet: true,
      ceiling: { tool: 't', recordsPerSec: 9000, recordsPerSecWithJoin: 5000, mbPerSec: 2, runs: [], oursOverCeiling: 0.1 },
      extra: { orderIntact: true },
      violations: [],
      notes: ['n'],
      rounds: 1,
      durationSec: 1,
    },
  ],
  errors: [{ scenario: 'io-keyed', message: 'boom' }],
  durationSec: 3,
};

describe('report', () => {
  it('renders the table with ✓/✗', () => {
    const md = renderMarkdown(report);
    expect(md).toContain('| passthrough | 900 | 1,000 | 0.90× |');
    expect(md).toContain('| ✓ |');
    expect(md).toContain('| io-keyed | error |');
    expect(md).toContain('Ours / ceiling');
  });

  it('renders an SVG with one bar per ratio and the ceiling', () => {
    const svg = renderSvg(report);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('passthrough / ceiling');
    expect(svg.match(/<rect /g)?.length).toBe(3); // background + 2 bars
  });
});
