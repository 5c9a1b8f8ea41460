// The report of a run: the JSON summary (its shape is fixed: see docs/chaos.md), the table
// printed on stdout, and an SVG timeline (nodes as rows, faults as shaded spans,
// violations as marks).
import type { CheckResult, Entry, FaultEntry, FaultKind } from './history.js';

export interface ChaosReport {
  mode: 'netns' | 'hook';
  seed: number;
  durationS: number;
  nodes: number;
  operations: number;
  faults: Record<FaultKind, number>;
  violations: Record<string, number>;
  convergeP50Ms: number | null;
  convergeP99Ms: number | null;
  heapGrowthBytesPerFault: number | null;
}

export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export function summaryTable(r: ChaosReport, results: readonly CheckResult[], extra: string[]): string {
  const lines: string[] = [];
  lines.push(`chaos run: mode ${r.mode}, seed ${r.seed}, ${r.durationS} s, ${r.nodes} nodes, ${r.operations} operations`);
  for (const x of extra) lines.push(x);
  lines.push('');
  lines.push('faults');
  for (const [k, n] of Object.entries(r.faults)) lines.push(`  ${k.padEnd(12)} ${String(n).padStart(5)}`);
  lines.push('');
  lines.push(`membership convergence after a heal: p50 ${r.convergeP50Ms ?? '-'} ms, p99 ${r.convergeP99Ms ?? '-'} ms`);
  lines.push(`heap growth per fault: ${r.heapGrowthBytesPerFault ?? '-'} bytes`);
  lines.push('');
  lines.push('checker              violations  first example');
  for (const c of results) {
    const first = c.violations[0]?.message ?? '';
    lines.push(`  ${c.name.padEnd(18)} ${String(c.violations.length).padStart(10)}  ${first}`);
  }
  return lines.join('\n');
}

const COLORS: Record<FaultKind, string> = { kill: '#e57373', stop: '#ffb74d', partition: '#64b5f6', restart: '#ba68c8', slow: '#aed581' };

export function timelineSvg(entries: readonly Entry[], results: readonly CheckResult[], nodes: readonly string[], from: number, to: number): string {
  const width = 1200;
  const left = 60;
  const rowH = 28;
  const top = 30;
  const height = top + rowH * nodes.length + 60;
  const span = Math.max(1, to - from);
  const x = (t: number): number => left + ((t - from) / span) * (width - left - 20);
  const row = (n: string | undefined): number => Math.max(0, nodes.indexOf(n ?? ''));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  nodes.forEach((n, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="8" y="${y + rowH / 2 + 4}">${esc(n)}</text>`);
    parts.push(`<line x1="${left}" y1="${y + rowH}" x2="${width - 20}" y2="${y + rowH}" stroke="#ddd"/>`);
  });
  for (const f of entries.filter((e): e is FaultEntry => e.type === 'fault')) {
    const hit = f.kind === 'partition' ? [...new Set((f.cut ?? []).flat())] : f.nodes;
    for (const n of hit) {
      const y = top + row(n) * rowH + 3;
      const w = Math.max(2, x(f.end) - x(f.start));
      parts.push(`<rect x="${x(f.start)}" y="${y}" width="${w}" height="${rowH - 6}" fill="${COLORS[f.kind]}" opacity="0.6"><title>${esc(`${f.kind} ${f.detail ?? ''} ${f.end - f.start} ms`)}</title></rect>`);
    }
  }
  for (const c of results) {
    for (const v of c.violations) {
      const y = top + row(v.node) * rowH + rowH / 2;
      parts.push(`<circle cx="${x(v.t)}" cy="${y}" r="4" fill="#b71c1c"><title>${esc(`${c.name}: ${v.message}`)}</title></circle>`);
    }
  }
  // Time axis, every 10 s.
  const axisY = top + rowH * nodes.length + 15;
  for (let s = 0; s * 1000 <= span; s += 10) {
    parts.push(`<text x="${x(from + s * 1000)}" y="${axisY}" text-anchor="middle" fill="#555">${s}s</text>`);
  }
  let lx = left;
  for (const [k, c] of Object.entries(COLORS)) {
    parts.push(`<rect x="${lx}" y="${axisY + 15}" width="12" height="12" fill="${c}"/><text x="${lx + 16}" y="${axisY + 25}">${k}</text>`);
    lx += 90;
  }
  parts.push(`<circle cx="${lx + 6}" cy="${axisY + 21}" r="4" fill="#b71c1c"/><text x="${lx + 16}" y="${axisY + 25}">violation</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
