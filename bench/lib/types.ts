import type { Chart } from './chart.js';

// The shape of a benchmark module and of what one run of it returns. Every bench in
// bench/ exports one `BenchModule`; the runner (runner.ts) does the rest: repeated runs,
// medians, progress bar, table, JSON and Markdown in the shape fixed by the conventions.

/** One option of a bench, parsed from `--<name> <value>`. */
export interface OptionSpec {
  type: 'number' | 'string' | 'boolean';
  description: string;
  default?: number | string | boolean;
  /** Allowed values of a string option. */
  choices?: readonly string[];
  /** For numbers: must be an integer. */
  integer?: boolean;
  /** For numbers: smallest allowed value. */
  min?: number;
  /** Name of the value in `--help` (e.g. `ms`). */
  arg?: string;
}

export type OptionValues = Record<string, number | string | boolean | undefined>;

/** Options every bench takes. */
export interface CommonOptions {
  /** Seconds of measurement per run. */
  durationS: number;
  runs: number;
  json: string | undefined;
  quiet: boolean;
  /** Every process of the bench runs under `taskset -c 0` (one CPU). */
  pinned: boolean;
  /** `--runs` was given on the command line (otherwise a bench's `defaultRuns` applies). */
  runsExplicit?: boolean;
}

/** Figures of one run; `compare` holds what ours was measured against in that same run. */
export interface RunOutput {
  metrics: Record<string, number>;
  compare?: Record<string, Record<string, number>>;
  /** Rows of text for the Markdown file and the table (e.g. per-contender counts). Not in the JSON. */
  notes?: string[];
  /**
   * For benches that sweep parameters (scale): one entry per point of the sweep, in the same
   * order every run. The result's `runs` then holds one entry per point (medians over runs).
   */
  entries?: Record<string, number>[];
}

export interface RunContext {
  readonly common: CommonOptions;
  /** 0-based index of this run. */
  readonly run: number;
  /** Reports progress within this run, 0..1, with an optional short phase label. */
  progress(fraction: number, phase?: string): void;
  /** A line for the user (suppressed with --quiet). */
  log(line: string): void;
}

/** One section of the printed table. */
export interface TableSection {
  title?: string;
  headers: string[];
  rows: string[][];
}

/** The JSON result, exactly as the conventions fix it. */
export interface BenchResult {
  name: string;
  params: Record<string, number | string | boolean>;
  env: { node: string; cpus: number; os: string };
  metrics: Record<string, number>;
  runs: Record<string, number>[];
  compare: Record<string, Record<string, number>>;
}

export interface BenchModule<P extends Record<string, number | string | boolean> = Record<string, number | string | boolean>> {
  name: string;
  /** One line for `--help`. */
  summary: string;
  /** Default of `--duration`, seconds per run. */
  defaultDurationS: number;
  /** Default of `--runs` for this bench. @default 5 */
  defaultRuns?: number;
  /** True for latency benches: `--pin` makes sense and the mode is shown. */
  latency: boolean;
  options: Record<string, OptionSpec>;
  /** Validated bench parameters from parsed option values (throws BenchUsageError). */
  params(values: OptionValues, common: CommonOptions): P;
  /** Optional skip check before any run (e.g. a missing dependency): a reason, or undefined. */
  unavailable?(params: P): string | undefined;
  /** One run: measures and returns its figures. Must clean up everything it started. */
  run(params: P, ctx: RunContext): Promise<RunOutput>;
  /** The table sections for the result; the runner adds a header and a generic section otherwise. */
  table?(result: BenchResult, notes: string[]): TableSection[];
  /**
   * The SVG charts of the headline comparison (ours, the floor, the peers), written as
   * `<name>.svg` (and `<name>-<suffix>.svg`); the runner draws every metric by unit otherwise.
   */
  charts?(result: BenchResult): Chart[];
}

/** Bad command line: printed with a hint to `--help`, exit code 2. */
export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}
