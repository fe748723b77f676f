/** The outputs: latest.json's shape, the Markdown table and a hand-written SVG bar chart of the ratios. */
import type { ScenarioResult } from './scenarios/types.js';

/** The machine the numbers come from. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cpus: number;
  readonly totalMemoryMb: number;
  readonly os: string;
  readonly node: string;
  readonly kafka: string;
  readonly date: string;
  readonly loadAvgAtStart: readonly number[];
  readonly loadAvgAtEnd: readonly number[];
}

/** latest.json */
export interface BenchReport {
  readonly generatedAt: string;
  readonly mode: 'quick' | 'full';
  readonly rounds: number | 'scenario default';
  readonly command: string;
  readonly machine: MachineInfo;
  readonly git: { readonly commitAtStart: string; readonly commit: string; readonly uncommittedChangesInCore: boolean };
  readonly scenarios: readonly ScenarioResult[];
  readonly errors: readonly { readonly scenario: string; readonly message: string }[];
  readonly durationSec: number;
}

const int = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const fixed = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : '–');

function ratioText(r: ScenarioResult): string {
  if (!Number.isFinite(r.ratio)) return '–';
  return `${r.ratio >= 10 ? r.ratio.toFixed(1) : r.ratio.toFixed(2)}×${r.ratioMetric === 'peakRssMb' ? ' RSS' : ''}`;
}

function latency(p50: number, p99: number): string {
  return `${int(p50)} / ${int(p99)}`;
}

function coreBuilds(report: BenchReport): string[] {
  return [...new Set(report.scenarios.flatMap((r) => [...r.ours.rounds, ...r.baseline.rounds].map((x) => x.coreBuild)))];
}

/** The Markdown report. */
export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`# Benchmark results (${report.mode})`, '');
  lines.push(
    `${report.generatedAt} · \`${report.command}\` · ${report.durationSec.toFixed(0)} s · rounds: ${report.rounds} (per scenario below; the median is reported; ours and baseline alternate, each run on fresh topics with the same records, each consumer in its own process)`,
    '',
  );
  lines.push(
    `Machine: ${m.cpus} × ${m.cpuModel}, ${int(m.totalMemoryMb)} MB RAM, ${m.os}, Node ${m.node}, Kafka ${m.kafka} (single local broker). ` +
      `Load average at start ${m.loadAvgAtStart.map((v) => v.toFixed(1)).join(' / ')}, at end ${m.loadAvgAtEnd.map((v) => v.toFixed(1)).join(' / ')} (shared machine). ` +
      `Git ${report.git.commitAtStart.slice(0, 12)}${report.git.commit === report.git.commitAtStart ? '' : ` (at start; ${report.git.commit.slice(0, 12)} at the end)`}` +
      `${report.git.uncommittedChangesInCore ? ' with uncommitted changes in packages/core' : ''}; @stream/core build(s) measured: ${coreBuilds(report).join(', ') || '–'}.`,
    '',
  );
  if (coreBuilds(report).length > 1) {
    lines.push('**Warning**: @stream/core was rebuilt while this ran; each round below names the build it measured.', '');
  }
  lines.push(
    '| Scenario | Ours rec/s | Baseline rec/s | Ratio (ours/baseline) | Ours p50 / p99 ms | Baseline p50 / p99 ms | Ours peak RSS MB | Baseline peak RSS MB | Target | Met |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|:---:|',
  );
  for (const r of report.scenarios) {
    lines.push(
      `| ${r.scenario} | ${int(r.ours.recordsPerSec)} | ${int(r.baseline.recordsPerSec)} | ${ratioText(r)} | ${latency(r.ours.p50Ms, r.ours.p99Ms)} | ` +
        `${latency(r.baseline.p50Ms, r.baseline.p99Ms)} | ${int(r.ours.peakRssMb)} | ${int(r.baseline.peakRssMb)} | ${r.target} | ${r.targetMet ? '✓' : '✗'} |`,
    );
  }
  for (const e of report.errors) lines.push(`| ${e.scenario} | error | | | | | | | | ✗ |`);
  lines.push('');

  const onOthers = report.scenarios.filter((r) => (r.transports ?? []).length > 0);
  if (onOthers.length > 0) {
    lines.push('## Transports: ours on each Kafka client', '');
    lines.push(
      "Ours on kafkajs and on the other clients ran in the same rounds, alternating, on the same data, against the same kafkajs baseline. Ratio to baseline and to ours on kafkajs are of the scenario's metric (records/s, or peak RSS for backlog-memory: lower is better).",
      '',
      '| Scenario | Client | rec/s | CPU ms / 1k rec | peak RSS MB | p50 / p99 ms | / baseline | / ours on kafkajs | / broker consumer (rec/s) |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of onOthers) {
      const ceiling = r.ceiling ? fixed(r.ceiling.oursOverCeiling, 3) : '–';
      lines.push(
        `| ${r.scenario} | kafkajs | ${int(r.ours.recordsPerSec)} | ${fixed(r.ours.cpuMsPer1kRecords)} | ${int(r.ours.peakRssMb)} | ${latency(r.ours.p50Ms, r.ours.p99Ms)} | ${ratioText(r)} | 1.00× | ${ceiling} |`,
      );
      for (const t of r.transports ?? []) {
        lines.push(
          `| ${r.scenario} | ${t.transport} | ${int(t.ours.recordsPerSec)} | ${fixed(t.ours.cpuMsPer1kRecords)} | ${int(t.ours.peakRssMb)} | ${latency(t.ours.p50Ms, t.ours.p99Ms)} | ` +
            `${fixed(t.ratio, 2)}× | ${fixed(t.overKafkajs, 2)}× | ${t.overCeiling === undefined ? '–' : fixed(t.overCeiling, 3)} |`,
        );
      }
    }
    lines.push('');
  }

  const ceilings = report.scenarios.filter((r) => r.ceiling);
  if (ceilings.length > 0) {
    lines.push("## Ceiling: the broker's own consumer", '');
    lines.push(
      '| Scenario | Ours rec/s | Baseline rec/s | kafka-consumer-perf-test rec/s (fetch phase) | incl. group join | MB/s | Ours / ceiling | Baseline / ceiling |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of ceilings) {
      const c = r.ceiling!;
      lines.push(
        `| ${r.scenario} | ${int(r.ours.recordsPerSec)} | ${int(r.baseline.recordsPerSec)} | ${int(c.recordsPerSec)} | ${int(c.recordsPerSecWithJoin)} | ${fixed(c.mbPerSec)} | ` +
          `${fixed(c.oursOverCeiling, 3)} | ${fixed(c.recordsPerSec > 0 ? r.baseline.recordsPerSec / c.recordsPerSec : Number.NaN, 3)} |`,
      );
    }
    lines.push('', 'The ceiling only consumes (no decoding, validation or producing): it bounds what any Node consumer on this broker can reach.', '');
  }

  lines.push('## Scenarios', '');
  for (const r of report.scenarios) {
    lines.push(`### ${r.scenario}: ${r.title}`, '');
    lines.push(`- Ours: ${r.ours.label}`, `- Baseline: ${r.baseline.label}`, `- Rounds: ${r.rounds} (${r.durationSec.toFixed(0)} s)`);
    lines.push(`- Target: ${r.target}: ${r.targetMet ? 'met ✓' : 'missed ✗'} (ratio ${ratioText(r)})`);
    for (const [key, value] of Object.entries(r.extra)) lines.push(`- ${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
    for (const v of r.violations) lines.push(`- **Violation**: ${v}`);
    for (const n of r.notes) lines.push(`- ${n}`);
    lines.push(
      '',
      '| Side | Round | rec/s | p50 ms | p99 ms | peak RSS MB | RSS at 25/50/75/100 % MB | CPU ms / 1k rec | rec / fetched batch | setup ms | duplicates | load | core build |',
      '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|',
    );
    for (const [side, summary] of [
      ['ours', r.ours],
      ['baseline', r.baseline],
      ...(r.transports ?? []).map((t) => [`ours on ${t.transport}`, t.ours] as const),
    ] as const) {
      for (const round of summary.rounds) {
        lines.push(
          `| ${side} | ${round.round} | ${int(round.recordsPerSec)} | ${int(round.p50Ms)} | ${int(round.p99Ms)} | ${int(round.peakRssMb)} | ${round.rssAtProgressMb.map(int).join(' / ')} | ` +
            `${fixed(round.cpuMsPer1kRecords)} | ${round.diagnostics.batchesFetched ? int(round.handled / round.diagnostics.batchesFetched) : '–'} | ${int(round.setupMs)} | ${round.duplicates + (round.output?.duplicates ?? 0)} | ${fixed(round.loadAvg1)} | ${round.coreBuild} |`,
        );
      }
    }
    lines.push('');
  }
  if (report.errors.length > 0) {
    lines.push('## Errors', '');
    for (const e of report.errors) lines.push(`### ${e.scenario}`, '', '```', e.message, '```', '');
  }
  return `${lines.join('\n')}\n`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Bar {
  readonly label: string;
  readonly value: number;
  readonly target: number | undefined;
  readonly met: boolean | undefined;
  readonly caption: string;
}

/**
 * Horizontal bars of the ratios on a log scale, drawn from the 1× line (right: ours ahead, left: behind),
 * a tick at each target. No chart library: plain SVG.
 */
export function renderSvg(report: BenchReport): string {
  const bars: Bar[] = [];
  for (const r of report.scenarios) {
    const throughput = r.ratioMetric === 'recordsPerSec';
    const target = /([\d.]+)×/.exec(r.target);
    bars.push({
      label: r.scenario,
      value: r.ratio,
      target: throughput && target ? Number(target[1]) : undefined,
      met: r.targetMet,
      caption: throughput ? `${ratioText(r)} records/s` : `${ratioText(r)} (peak ${int(r.ours.peakRssMb)} vs ${int(r.baseline.peakRssMb)} MB; lower is better)`,
    });
    if (r.ceiling) {
      bars.push({
        label: `${r.scenario} / ceiling`,
        value: r.ceiling.oursOverCeiling,
        target: undefined,
        met: undefined,
        caption: `${fixed(r.ceiling.oursOverCeiling, 3)}× of kafka-consumer-perf-test`,
      });
    }
  }
  for (const e of report.errors) bars.push({ label: e.scenario, value: Number.NaN, target: undefined, met: false, caption: 'error (see the Markdown report)' });
  const finite = bars
    .map((b) => b.value)
    .concat(bars.map((b) => b.target ?? 1))
    .filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.min(-1, Math.floor(Math.log10(Math.min(1, ...finite))));
  const hi = Math.max(1, Math.ceil(Math.log10(Math.max(1, ...finite))));
  const width = 900;
  const left = 190;
  const right = 250;
  const top = 56;
  const row = 34;
  const plot = width - left - right;
  const height = top + bars.length * row + 40;
  const x = (v: number) => left + ((Math.log10(v) - lo) / (hi - lo)) * plot;
  const one = x(1);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${left}" y="22" font-size="15" font-weight="600">Ours / baseline (${escapeXml(report.mode)} run, ${escapeXml(report.generatedAt.slice(0, 10))}), log scale</text>`,
  );
  out.push(`<text x="${left}" y="40" fill="#555">green: target met · red: missed · grey: ours vs the broker's own consumer · | target</text>`);
  for (let d = lo; d <= hi; d += 1) {
    const gx = x(10 ** d);
    out.push(
      `<line x1="${gx.toFixed(1)}" y1="${top - 6}" x2="${gx.toFixed(1)}" y2="${top + bars.length * row}" stroke="${d === 0 ? '#333' : '#ddd'}" stroke-width="${d === 0 ? 1.5 : 1}"/>`,
    );
    out.push(
      `<text x="${gx.toFixed(1)}" y="${top + bars.length * row + 16}" text-anchor="middle" fill="#555">${10 ** d >= 1 ? String(10 ** d) : (10 ** d).toFixed(-d)}×</text>`,
    );
  }
  bars.forEach((b, i) => {
    const y = top + i * row;
    out.push(`<text x="${left - 8}" y="${y + row / 2 + 4}" text-anchor="end">${escapeXml(b.label)}</text>`);
    if (!Number.isFinite(b.value) || b.value <= 0) {
      out.push(`<text x="${one + 6}" y="${y + row / 2 + 4}" fill="#a00">${escapeXml(b.caption)}</text>`);
      return;
    }
    const bx = x(Math.min(Math.max(b.value, 10 ** lo), 10 ** hi));
    const color = b.met === undefined ? '#9e9e9e' : b.met ? '#2e7d32' : '#c62828';
    out.push(
      `<rect x="${Math.min(one, bx).toFixed(1)}" y="${y + 7}" width="${Math.max(1, Math.abs(bx - one)).toFixed(1)}" height="${row - 14}" fill="${color}" rx="2"/>`,
    );
    if (b.target !== undefined) {
      const tx = x(b.target);
      out.push(`<line x1="${tx.toFixed(1)}" y1="${y + 3}" x2="${tx.toFixed(1)}" y2="${y + row - 3}" stroke="#000" stroke-width="2"/>`);
    }
    out.push(`<text x="${width - right + 10}" y="${y + row / 2 + 4}" fill="#222">${escapeXml(b.caption)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
