import type { FaultResult } from './harness.js';

const seconds = (ms: number | null) => (ms === null ? '—' : ms === Infinity ? '>180 s' : `${(ms / 1000).toFixed(1)} s`);

/** The one line per fault the issue asks for. */
export function resultLine(r: FaultResult): string {
  if (r.skipped !== undefined) return `SKIPPED  ${r.title}: ${r.skipped}`;
  const verdict = r.problems.length === 0 ? 'PASS' : 'FAIL';
  return `${verdict}  ${r.title.padEnd(44)} in ${String(r.recordsIn).padStart(6)}  processed ${String(r.processed).padStart(6)}  lost ${r.lost}  dup ${r.duplicates}  dead-lettered ${r.deadLettered}  recover ${seconds(r.recoverMs)}  (${seconds(r.durationMs)})`;
}

/** The final table, in Markdown (printed, and kept in docs/faults.md). */
export function resultTable(results: readonly FaultResult[]): string {
  const rows = results.map((r) =>
    r.skipped !== undefined
      ? `| ${r.title} | — | — | — | — | — | — | — | skipped: ${r.skipped} |`
      : `| ${r.title} | ${r.recordsIn} | ${r.processed} | ${r.lost} | ${r.duplicates} | ${r.deadLettered} | ${seconds(r.recoverMs)} | ${seconds(r.durationMs)} | ${r.problems.length === 0 ? 'pass' : 'FAIL'} |`,
  );
  return [
    '| fault | records in | processed (unique) | lost | duplicate side effects | dead-lettered | time to recover | run time | result |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
  ].join('\n');
}

/** Each phase's time summed over `results`, in the order the phases first appear. */
export function phaseTotals(results: readonly FaultResult[]): { name: string; ms: number }[] {
  const totals = new Map<string, number>();
  for (const r of results) for (const p of r.phases) totals.set(p.name, (totals.get(p.name) ?? 0) + p.ms);
  return [...totals].map(([name, ms]) => ({ name, ms }));
}
