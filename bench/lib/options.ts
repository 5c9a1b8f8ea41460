// The command line: `<name|all> [options]`, parsed with node:util.parseArgs against the
// common options plus the chosen bench's own. Numbers are validated here, each error
// naming the option, so a bench receives clean values.
import { parseArgs } from 'node:util';
import { BenchUsageError, type BenchModule, type CommonOptions, type OptionSpec, type OptionValues } from './types.js';

export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  duration: { type: 'number', min: 0.01, arg: 's', description: 'seconds of measurement per run (default: per bench)' },
  runs: { type: 'number', integer: true, min: 1, default: 5, description: 'runs; the median of each figure is reported' },
  json: { type: 'string', arg: 'file', description: 'also write the JSON result to this file' },
  quiet: { type: 'boolean', default: false, description: 'no progress bar and no log lines (for scripts)' },
  pin: { type: 'boolean', default: false, description: 'run every process under `taskset -c 0` (latency benches)' },
  help: { type: 'boolean', default: false, description: 'show this help' },
};

export type ParsedCommand =
  | { kind: 'help'; bench: BenchModule | undefined }
  | { kind: 'run'; benches: { module: BenchModule; values: OptionValues }[]; common: CommonOptions; all: boolean };

/** Parses argv (without node and script). `registry` lists the benches in `all` order. */
export function parseCommand(argv: readonly string[], registry: readonly BenchModule[]): ParsedCommand {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h') return { kind: 'help', bench: undefined };
  if (first.startsWith('-')) throw new BenchUsageError(`expected a bench name first, got ${first}`);
  const all = first === 'all';
  const module = all ? undefined : registry.find((b) => b.name === first);
  if (!all && !module) {
    throw new BenchUsageError(`unknown bench ${JSON.stringify(first)}; known: ${registry.map((b) => b.name).join(', ')}, all`);
  }
  const specs = { ...COMMON_OPTIONS, ...(module?.options ?? {}) };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [k, s] of Object.entries(specs)) options[k] = { type: s.type === 'boolean' ? 'boolean' : 'string' };
  options.help = { type: 'boolean', short: 'h' };
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined> };
  try {
    parsed = parseArgs({ args: argv.slice(1) as string[], strict: true, allowPositionals: false, options });
  } catch (e) {
    throw new BenchUsageError((e as Error).message);
  }
  const raw = parsed.values as Record<string, string | boolean | undefined>;
  if (raw.help === true) return { kind: 'help', bench: module };
  const values: OptionValues = {};
  for (const [k, s] of Object.entries(specs)) values[k] = convert(k, s, raw[k]);
  const common: CommonOptions = {
    durationS: (values.duration as number | undefined) ?? NaN, // NaN: the bench's default, filled in by the runner
    runs: values.runs as number,
    json: values.json as string | undefined,
    quiet: values.quiet as boolean,
    pinned: false,
    runsExplicit: raw.runs !== undefined,
  };
  const benches = all ? registry.map((m) => ({ module: m, values: defaults(m.options) })) : [{ module: module!, values }];
  return { kind: 'run', benches, common, all };
}

function defaults(specs: Record<string, OptionSpec>): OptionValues {
  const out: OptionValues = {};
  for (const [k, s] of Object.entries(specs)) out[k] = s.default;
  return out;
}

function convert(name: string, spec: OptionSpec, v: string | boolean | undefined): number | string | boolean | undefined {
  if (v === undefined) return spec.default;
  if (spec.type === 'boolean') return v === true;
  const s = String(v);
  if (spec.type === 'string') {
    if (spec.choices && !spec.choices.includes(s)) {
      throw new BenchUsageError(`--${name} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(s)}`);
    }
    return s;
  }
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n)) throw new BenchUsageError(`--${name} must be a number, got ${JSON.stringify(s)}`);
  if (spec.integer && !Number.isInteger(n)) throw new BenchUsageError(`--${name} must be an integer, got ${s}`);
  if (spec.min !== undefined && n < spec.min) throw new BenchUsageError(`--${name} must be at least ${spec.min}, got ${s}`);
  return n;
}

/** The `--help` text: usage, common options, then every bench with its options. */
export function helpText(registry: readonly BenchModule[], only?: BenchModule): string {
  const opt = (k: string, s: OptionSpec): string => {
    const arg = s.type === 'boolean' ? '' : s.choices ? ` <${s.choices.join('|')}>` : ` <${s.arg ?? (s.type === 'number' ? 'n' : 'value')}>`;
    const def = s.default !== undefined && s.type !== 'boolean' ? ` (default ${s.default})` : '';
    return `    --${k}${arg}`.padEnd(30) + ` ${s.description}${def}`;
  };
  const lines: string[] = [
    'Usage: npm run bench -- <name> [options]     one benchmark',
    '       npm run bench -- all [common options] every benchmark, in order',
    '       npm run bench -- [<name>] --help',
    '',
    'Results: a table on stdout, bench/results/<name>.json (medians over the runs, every run,',
    'and what ours was compared against in the same run) and bench/results/<name>.md.',
    '',
    'Common options:',
    ...Object.entries(COMMON_OPTIONS).map(([k, s]) => opt(k, s)),
    '',
    'Benchmarks:',
  ];
  for (const b of only ? [only] : registry) {
    lines.push(`  ${b.name.padEnd(12)} ${b.summary} (default --duration ${b.defaultDurationS}${b.latency ? '; --pin applies' : ''})`);
    for (const [k, s] of Object.entries(b.options)) lines.push(opt(k, s));
  }
  return lines.join('\n');
}
