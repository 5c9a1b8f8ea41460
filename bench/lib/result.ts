// The result files: bench/results/<name>.json in exactly the shape of the conventions
// (name, params, env, metrics = medians over runs, runs, compare) plus the optional
// `--json` copy, bench/results/<name>.md with the same tables in Markdown, and the SVG
// charts bench/results/<name>.svg (plus <name>-<suffix>.svg for benches with several).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderChart, type Chart } from './chart.js';
import { markdownTable, modeLine } from './format.js';
import { medians } from './stats.js';
import type { BenchResult, RunOutput, TableSection } from './types.js';

/** bench/results, or `$EXPIRABLE_BENCH_RESULTS_DIR` when set (the smoke tests use a temporary one). */
export const RESULTS_DIR = process.env.EXPIRABLE_BENCH_RESULTS_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** Machine facts recorded with every result. */
export function benchEnv(): BenchResult['env'] {
  return { node: process.version, cpus: cpus().length, os: platform() };
}

/**
 * Builds the result from the runs: metrics and compare figures are per-key medians. When the
 * runs carry sweep entries, `runs` holds one entry per point of the sweep (medians over runs).
 */
export function buildResult(name: string, params: BenchResult['params'], outputs: readonly RunOutput[]): BenchResult {
  const swept = outputs.length > 0 && outputs.every((o) => o.entries !== undefined);
  const runs = swept
    ? outputs[0]!.entries!.map((_, i) => medians(outputs.map((o) => o.entries![i]).filter((x): x is Record<string, number> => x !== undefined)))
    : outputs.map((o) => ({ ...o.metrics }));
  const peers = new Set<string>();
  for (const o of outputs) for (const p of Object.keys(o.compare ?? {})) peers.add(p);
  const compare: BenchResult['compare'] = {};
  for (const p of peers) {
    compare[p] = medians(outputs.map((o) => o.compare?.[p]).filter((x): x is Record<string, number> => x !== undefined));
  }
  const metrics = medians(outputs.map((o) => ({ ...o.metrics })));
  return { name, params: { ...params }, env: benchEnv(), metrics, runs, compare };
}

/** Writes `<dir>/<name>.json`, `<dir>/<name>.md`, the charts and the `--json` copy; returns the paths written. */
export function writeResult(
  result: BenchResult,
  sections: readonly TableSection[],
  notes: readonly string[],
  opts: { dir?: string; jsonCopy?: string | undefined; command: string; pinned: boolean; charts?: readonly Chart[] },
): string[] {
  const dir = opts.dir ?? RESULTS_DIR;
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const paths = [join(dir, `${result.name}.json`), join(dir, `${result.name}.md`)];
  writeFileSync(paths[0]!, json);
  writeFileSync(paths[1]!, markdown(result, sections, notes, opts.command, opts.pinned));
  for (const chart of opts.charts ?? []) {
    const path = join(dir, `${result.name}${chart.suffix ? `-${chart.suffix}` : ''}.svg`);
    writeFileSync(path, renderChart(chart));
    paths.push(path);
  }
  if (opts.jsonCopy) {
    mkdirSync(dirname(resolve(opts.jsonCopy)), { recursive: true });
    writeFileSync(opts.jsonCopy, json);
    paths.push(opts.jsonCopy);
  }
  return paths;
}

function markdown(result: BenchResult, sections: readonly TableSection[], notes: readonly string[], command: string, pinned: boolean): string {
  const out = [
    `## ${result.name}`,
    '',
    `\`${command}\``,
    '',
    `Node ${result.env.node}, ${result.env.cpus} CPUs, ${result.env.os}; ${modeLine(pinned, result.env.cpus)}; ` +
      `medians of ${result.params.runs ?? result.runs.length} run(s).`,
    '',
    `Parameters: ${Object.entries(result.params).map(([k, v]) => `${k}=${v}`).join(', ')}`,
    '',
  ];
  for (const s of sections) out.push(markdownTable(s), '');
  if (notes.length > 0) out.push(...notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
