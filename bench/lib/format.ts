// Rendering: numbers for humans, tables as aligned text (stdout) and as Markdown (the
// .md result file), the default table of a result, and the run-mode line.
import type { BenchResult, TableSection } from './types.js';

/** A figure with sensible precision: 12 345, 123.4, 1.23, 0.0123. */
export function fmt(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '–';
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (Number.isInteger(n) || a >= 10_000) return Math.round(n).toLocaleString('en-US');
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return '0';
  return n.toPrecision(3);
}

/** `x` as a ratio to `base`, e.g. "2.31x"; "–" when undefined. */
export function ratio(x: number | undefined, base: number | undefined): string {
  if (x === undefined || base === undefined || !Number.isFinite(x) || !Number.isFinite(base) || base === 0) return '–';
  return `${(x / base).toFixed(2)}x`;
}

/** Aligned plain-text table. */
export function textTable(section: TableSection): string {
  const all = [section.headers, ...section.rows];
  const widths = section.headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out: string[] = [];
  if (section.title) out.push(section.title);
  out.push(line(section.headers), widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of section.rows) out.push(line(r));
  return out.join('\n');
}

/** GitHub-flavoured Markdown table. */
export function markdownTable(section: TableSection): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  const out: string[] = [];
  if (section.title) out.push(`**${section.title}**`, '');
  out.push(`| ${section.headers.map(esc).join(' | ')} |`);
  out.push(`|${section.headers.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const r of section.rows) out.push(`| ${r.map(esc).join(' | ')} |`);
  return out.join('\n');
}

/** The generic table: every metric with median, min and max over the runs, then compare. */
export function defaultSections(result: BenchResult): TableSection[] {
  const rows = Object.keys(result.metrics).map((k) => {
    const vals = result.runs.map((r) => r[k]).filter((x): x is number => typeof x === 'number');
    return [k, fmt(result.metrics[k]), fmt(Math.min(...vals)), fmt(Math.max(...vals))];
  });
  const sections: TableSection[] = [{ headers: ['metric', `median of ${result.runs.length}`, 'min', 'max'], rows }];
  for (const [peer, m] of Object.entries(result.compare)) {
    sections.push({
      title: `compare: ${peer}`,
      headers: ['metric', peer, 'ours', 'ours / theirs'],
      rows: Object.keys(m).map((k) => [k, fmt(m[k]), fmt(result.metrics[k]), ratio(result.metrics[k], m[k])]),
    });
  }
  return sections;
}

/** "pinned to CPU 0 (taskset -c 0)" or "unpinned (N CPUs)". */
export function modeLine(pinned: boolean, cpus: number): string {
  return pinned ? 'pinned: every process on CPU 0 (taskset -c 0)' : `unpinned: processes free on ${cpus} CPUs`;
}
