#!/usr/bin/env node
/**
 * Summarises a V8 `.cpuprofile` (from `pnpm bench --profile`): self time per function and per module
 * group (kafkajs, @stream/core, zod, pino, node internals, GC…), to locate where a consumer spends its CPU.
 *
 * usage: node dist/profile-summary.js <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Which part of the stack a script belongs to. */
export function moduleGroup(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(idle)' || functionName === '(program)') return functionName;
    return 'native';
  }
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\//.exec(url);
  if (pnpm) {
    const name = pnpm[1]!.replace(/@[^@]*$/, '').replace(/\+/g, '/');
    return name;
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /\/packages\/([^/]+)\//.exec(url);
  if (pkg) return `@stream/${pkg[1]!}`;
  return path.basename(url);
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly byGroup: readonly { readonly group: string; readonly ms: number; readonly share: number }[];
  readonly byFunction: readonly { readonly fn: string; readonly group: string; readonly ms: number; readonly share: number }[];
  /** Inclusive time of selected frames (what is under them). */
  readonly inclusive: readonly { readonly fn: string; readonly ms: number; readonly share: number }[];
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let total = 0;
  const groups = new Map<string, number>();
  const fns = new Map<string, { group: string; ms: number }>();
  for (const [id, ms] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    total += ms;
    const group = moduleGroup(url, functionName);
    groups.set(group, (groups.get(group) ?? 0) + ms);
    const key = `${functionName || '(anonymous)'} ${url ? `${path.basename(url)}:${lineNumber + 1}` : ''}`.trim();
    const entry = fns.get(key) ?? { group, ms: 0 };
    entry.ms += ms;
    fns.set(key, entry);
  }
  // Inclusive time of frames by function name: each sample counts once per distinct name on its stack.
  const inclusive = new Map<string, number>();
  for (const [id, ms] of self) {
    const names = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)?.callFrame;
      if (f?.functionName) names.add(`${f.functionName} ${f.url ? path.basename(f.url) : ''}`.trim());
    }
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    for (const name of names) inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
  }
  const share = (ms: number) => (total > 0 ? ms / total : 0);
  return {
    totalMs: total,
    byGroup: [...groups].map(([group, ms]) => ({ group, ms, share: share(ms) })).sort((a, b) => b.ms - a.ms),
    byFunction: [...fns]
      .map(([fn, v]) => ({ fn, group: v.group, ms: v.ms, share: share(v.ms) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
    inclusive: [...inclusive]
      .map(([fn, ms]) => ({ fn, ms, share: share(ms) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
  };
}

function main(): void {
  process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
  const [file, topArg] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node dist/profile-summary.js <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(topArg ?? 25));
  const pct = (s: number) => `${(s * 100).toFixed(1).padStart(5)} %`;
  process.stdout.write(`${path.basename(file)}: ${summary.totalMs.toFixed(0)} ms of CPU samples (idle excluded)\n\nself time by module:\n`);
  for (const g of summary.byGroup.slice(0, 15)) process.stdout.write(`  ${pct(g.share)}  ${g.ms.toFixed(0).padStart(7)} ms  ${g.group}\n`);
  process.stdout.write('\nself time by function:\n');
  for (const f of summary.byFunction) process.stdout.write(`  ${pct(f.share)}  ${f.ms.toFixed(0).padStart(7)} ms  ${f.fn}  [${f.group}]\n`);
  process.stdout.write('\ninclusive time (frames on the stack):\n');
  for (const f of summary.inclusive) process.stdout.write(`  ${pct(f.share)}  ${f.ms.toFixed(0).padStart(7)} ms  ${f.fn}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
