// `npm run chaos -- [--nodes 5] [--duration 60] [--seed N] [--faults kill,stop,partition,restart,slow]
//                   [--json FILE] [--soak SECONDS] [--mode auto|netns|hook] [--late-read-ms N] [--restart-converge-ms N]`
//        npm run chaos -- --check HISTORY.jsonl   (the checkers over a saved history)
// Runs the nodes, the workload and the nemesis, checks the history, prints a summary, writes
// the JSON report, the history (FILE.history.jsonl) and the timeline (FILE.svg) next to each
// other, and exits 1 when a checker found a violation. See docs/chaos.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidOptionError } from '../src/errors.js';
import type { CheckConfig, Entry, FaultKind } from './history.js';
import { checkAll } from './checkers/index.js';
import { percentile, summaryTable, timelineSvg, type ChaosReport } from './report.js';
import { checkConfig, runChaos } from './run.js';
import { FAULT_KINDS } from './schedule.js';

export interface CliOptions {
  nodes: number;
  durationS: number;
  seed: number;
  faults: FaultKind[];
  json: string | undefined;
  soak: boolean;
  mode: 'auto' | 'netns' | 'hook';
  /** Relaxations of two checkers (see docs/chaos.md); undefined: strict. */
  lateReadMs: number | undefined;
  restartConvergeMs: number | undefined;
  /** Re-check this history file instead of running. */
  check: string | undefined;
}

/** What `--help` prints. */
export const USAGE = `Usage: npm run chaos -- [options]           run nodes, workload and faults; check the history
       npm run chaos -- --check HISTORY.jsonl    the checkers over a saved history
       npm run chaos -- --help

Options:
  --nodes <n>                node processes, 2 to 20 (default 5)
  --duration <s>             seconds of workload and faults, 10 to 86400 (default 60)
  --soak <s>                 a soak run of <s> seconds, 10 to 86400, instead of --duration;
                             each node's heap sampled every minute
  --seed <n>                 the fault schedule's seed, 0 to 2^31-1 (default: random, printed)
  --faults <list>            comma-separated, of ${FAULT_KINDS.join(', ')} (default: all)
  --mode <auto|netns|hook>   partitions by network namespaces + nftables (root, Linux) or by the
                             mesh's test-only fault hook; auto picks netns when it can (default auto)
  --json <file>              the report there (FILE.json), with FILE.history.jsonl and FILE.svg
                             beside it (default: a new temp folder)
  --late-read-ms <ms>        relax the no-expired-read checker by this much
  --restart-converge-ms <ms> relax the convergence checker after a restart by this much
  --check <file>             re-check a saved history instead of running
  --help                     this text

Exit code: 0 when every checker passed, 1 when one found a violation, 2 on a bad option.
See docs/chaos.md.`;

/** The command line asked for the usage text. */
export const HELP = Symbol('help');

/** The options of the command line, as node:util.parseArgs reads them. */
const OPTIONS = {
  nodes: { type: 'string' },
  duration: { type: 'string' },
  seed: { type: 'string' },
  faults: { type: 'string' },
  json: { type: 'string' },
  soak: { type: 'string' },
  mode: { type: 'string' },
  'late-read-ms': { type: 'string' },
  'restart-converge-ms': { type: 'string' },
  check: { type: 'string' },
  help: { type: 'boolean' },
} as const;

/**
 * Checks what node:util.parseArgs read without refusing anything (`strict: false`), so every
 * refusal is worded here, naming the option, rather than taken from Node's error text: an
 * unknown option, a stray argument, an option that takes a value given none (at the end, or
 * followed by another option: `--nodes --duration 20`), a flag given one (`--help=yes`).
 */
function checkTokens(tokens: NonNullable<ReturnType<typeof parseArgs>['tokens']>): void {
  for (const t of tokens) {
    if (t.kind === 'positional') throw new InvalidOptionError('argv', 'options only, each listed by --help', t.value);
    if (t.kind !== 'option') continue;
    const spec = (OPTIONS as Record<string, { type: 'string' | 'boolean' }>)[t.name];
    if (spec === undefined) throw new InvalidOptionError('argv', 'options listed by --help', t.rawName);
    if (spec.type === 'boolean') {
      if (t.value !== undefined) throw new InvalidOptionError(t.rawName, 'a flag without a value', t.value);
    } else if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-'))) {
      throw new InvalidOptionError(t.rawName, 'followed by its value', undefined);
    }
  }
}

/** Parses and checks the command line; a bad option is an InvalidOptionError naming it. */
export function parseCli(argv: string[]): CliOptions | typeof HELP {
  const parsed = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  checkTokens(parsed.tokens);
  const values = parsed.values as { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };
  if (values.help === true) return HELP;
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidOptionError(name, `an integer from ${min} to ${max}`, v);
    return n;
  };
  const nodes = int('nodes', values.nodes, 5, 2, 20);
  const soak = values.soak !== undefined;
  const durationS = soak ? int('soak', values.soak, 600, 10, 86_400) : int('duration', values.duration, 60, 10, 86_400);
  const seed = int('seed', values.seed, Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31 - 1);
  const faults = (values.faults ?? FAULT_KINDS.join(',')).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const f of faults) {
    if (!FAULT_KINDS.includes(f as FaultKind)) throw new InvalidOptionError('faults', `a comma-separated list of ${FAULT_KINDS.join(', ')}`, f);
  }
  if (faults.length === 0) throw new InvalidOptionError('faults', 'at least one fault kind', values.faults);
  if (faults.includes('partition') && nodes < 2) throw new InvalidOptionError('nodes', 'at least 2 for partitions', nodes);
  const mode = values.mode ?? 'auto';
  if (mode !== 'auto' && mode !== 'netns' && mode !== 'hook') throw new InvalidOptionError('mode', "'auto', 'netns' or 'hook'", mode);
  const lateReadMs = values['late-read-ms'] === undefined ? undefined : int('late-read-ms', values['late-read-ms'], 0, 0, 60_000);
  const restartConvergeMs = values['restart-converge-ms'] === undefined ? undefined : int('restart-converge-ms', values['restart-converge-ms'], 0, 0, 600_000);
  return { nodes, durationS, seed, faults: faults as FaultKind[], json: values.json, soak, mode, lateReadMs, restartConvergeMs, check: values.check };
}

export async function main(argv: string[]): Promise<number> {
  let o: CliOptions;
  try {
    const parsed = parseCli(argv);
    if (parsed === HELP) {
      console.log(USAGE);
      return 0;
    }
    o = parsed;
  } catch (err) {
    if (!(err instanceof InvalidOptionError)) throw err;
    console.error(`chaos: ${err.message} (see npm run chaos -- --help)`);
    return 2;
  }
  if (o.check !== undefined) return recheck(o);
  const base = o.json !== undefined ? resolve(o.json).replace(/\.json$/, '') : join(tmpdir(), `expirable-store-chaos-${o.seed}-${Date.now()}`, 'report');
  const jsonPath = `${base}.json`;
  const historyPath = `${base}.history.jsonl`;
  const svgPath = `${base}.svg`;
  mkdirSync(dirname(jsonPath), { recursive: true });
  const log = (line: string): void => console.log(`[chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
  const t0 = Date.now();
  log(`seed ${o.seed}, ${o.nodes} nodes, ${o.durationS} s, faults ${o.faults.join(',')}`);
  const run = await runChaos({
    nodes: o.nodes,
    durationS: o.durationS,
    seed: o.seed,
    faults: o.faults,
    mode: o.mode,
    historyPath,
    sampleEveryMs: o.soak ? 60_000 : 0,
    log,
  });
  const config = relax(run.config, o);
  const checked = checkAll(run.entries, config);
  const faultCount = Object.values(run.faultsDone).reduce((a, b) => a + b, 0);
  const report: ChaosReport = {
    mode: run.mode,
    seed: o.seed,
    durationS: o.durationS,
    nodes: o.nodes,
    operations: run.entries.filter((e) => e.type === 'op').length,
    faults: run.faultsDone,
    violations: Object.fromEntries(checked.results.map((c) => [c.name, c.violations.length])),
    convergeP50Ms: percentile(checked.convergeMs, 50),
    convergeP99Ms: percentile(checked.convergeMs, 99),
    heapGrowthBytesPerFault: faultCount === 0 ? null : Math.round(checked.heapGrowthBytes / faultCount),
  };
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(svgPath, timelineSvg(run.entries, checked.results, Array.from({ length: o.nodes }, (_, i) => `n${i}`), run.startedAt, run.endedAt));
  const relaxed = [o.lateReadMs === undefined ? '' : `reads up to ${o.lateReadMs} ms past expiry allowed`, o.restartConvergeMs === undefined ? '' : `convergence after a restart allowed ${o.restartConvergeMs} ms`].filter((x) => x);
  const extra = [
    ...(relaxed.length > 0 ? [`relaxed checkers: ${relaxed.join('; ')}`] : []),
    `partitions: ${run.mode === 'netns' ? 'network namespaces + nftables drop rules' : `fault hook in the mesh transport (${run.fallbackReason})`}; slow links: ${run.slowMode === 'netem' ? 'tc netem' : 'fault hook'}`,
    `report ${jsonPath}`,
    `history ${historyPath}`,
    `timeline ${svgPath}`,
  ];
  if (run.samples.length > 0) {
    extra.push('heap per node per minute (MB):');
    for (const s of run.samples) extra.push(`  ${Math.round((s.t - run.startedAt) / 60_000)} min  ${Object.entries(s.heap).map(([n, b]) => `${n} ${(b / 1048576).toFixed(1)}`).join('  ')}`);
  }
  console.log(summaryTable(report, checked.results, extra));
  return Object.values(report.violations).some((n) => n > 0) ? 1 : 0;
}

function relax(config: CheckConfig, o: CliOptions): CheckConfig {
  return {
    ...config,
    ...(o.lateReadMs === undefined ? {} : { lateReadMs: o.lateReadMs }),
    ...(o.restartConvergeMs === undefined ? {} : { restartConvergeMs: o.restartConvergeMs }),
  };
}

// `--check FILE`: the checkers over a saved history (after a checker changed, or to study one).
function recheck(o: CliOptions): number {
  const entries = readFileSync(o.check!, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Entry);
  const { results, convergeMs, heapGrowthBytes } = checkAll(entries, relax(checkConfig(), o));
  const faults: Record<string, number> = {};
  for (const e of entries) if (e.type === 'fault') faults[e.kind] = (faults[e.kind] ?? 0) + 1;
  const faultCount = Object.values(faults).reduce((a, b) => a + b, 0);
  console.log(`operations ${entries.filter((e) => e.type === 'op').length}; faults ${JSON.stringify(faults)}`);
  console.log(`convergence p50 ${percentile(convergeMs, 50)} ms, p99 ${percentile(convergeMs, 99)} ms; heap growth per fault ${faultCount === 0 ? '-' : Math.round(heapGrowthBytes / faultCount)} bytes`);
  for (const r of results) console.log(`${r.name.padEnd(20)} ${String(r.violations.length).padStart(6)}  ${r.violations[0]?.message ?? ''}`);
  return results.some((r) => r.violations.length > 0) ? 1 : 0;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(2);
    },
  );
}
