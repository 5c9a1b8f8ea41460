// Runs one bench: validates its parameters, runs it `--runs` times with a progress bar,
// takes the medians, prints the table and writes the result files.
import { defaultChart } from './chart.js';
import { defaultSections, modeLine, textTable } from './format.js';
import { createProgress } from './progress.js';
import { buildResult, writeResult } from './result.js';
import type { BenchModule, BenchResult, CommonOptions, OptionValues, RunOutput } from './types.js';

export interface RunBenchOptions {
  /** Where result files go. @default bench/results */
  dir?: string;
  /** The command line, for the Markdown file. */
  command: string;
  /** Where the table and messages go. @default stdout */
  print?: (text: string) => void;
}

/** Runs `module`; resolves with its result, or undefined when it was skipped. */
export async function runBench(
  module: BenchModule,
  values: OptionValues,
  commonIn: CommonOptions,
  opts: RunBenchOptions,
): Promise<BenchResult | undefined> {
  const print = opts.print ?? ((t: string) => void process.stdout.write(`${t}\n`));
  const common: CommonOptions = {
    ...commonIn,
    durationS: Number.isNaN(commonIn.durationS) ? module.defaultDurationS : commonIn.durationS,
    runs: commonIn.runsExplicit === false && module.defaultRuns !== undefined ? module.defaultRuns : commonIn.runs,
  };
  const benchParams = module.params(values, common);
  const skip = module.unavailable?.(benchParams);
  if (skip !== undefined) {
    print(`${module.name}: skipped: ${skip}`);
    return undefined;
  }
  const params = { ...benchParams, durationS: common.durationS, runs: common.runs, pinned: common.pinned };
  const progress = createProgress(module.name, !common.quiet);
  const outputs: RunOutput[] = [];
  try {
    for (let run = 0; run < common.runs; run++) {
      const base = run / common.runs;
      progress.update(base, `run ${run + 1}/${common.runs}`);
      const output = await module.run(benchParams, {
        common,
        run,
        progress: (f, phase) =>
          progress.update(base + Math.max(0, Math.min(1, f)) / common.runs, `run ${run + 1}/${common.runs}${phase ? ` ${phase}` : ''}`),
        log: (line) => {
          if (!common.quiet) process.stderr.write(`\n${line}\n`);
        },
      });
      outputs.push(output);
    }
  } finally {
    progress.stop();
  }
  const result = buildResult(module.name, params, outputs);
  const notes = outputs.at(-1)?.notes ?? [];
  const sections = module.table?.(result, notes) ?? defaultSections(result);
  const header =
    `${module.name}: ${modeLine(common.pinned, result.env.cpus)}; Node ${result.env.node}; ` +
    `medians of ${common.runs} run(s) of ${common.durationS} s`;
  print(['', header, '', ...sections.map((s) => `${textTable(s)}\n`), ...notes.map((n) => `  ${n}`)].join('\n'));
  const subtitle = `Node ${result.env.node}, ${result.env.cpus} CPUs, ${result.env.os}; ${modeLine(common.pinned, result.env.cpus)}; medians of ${common.runs} run(s)`;
  const charts = (module.charts?.(result) ?? [defaultChart(module.name, result.metrics)]).map((c) => ({ ...c, subtitle: c.subtitle ?? subtitle }));
  const paths = writeResult(result, sections, notes, {
    charts,
    dir: opts.dir,
    jsonCopy: common.json,
    command: opts.command,
    pinned: common.pinned,
  });
  if (!common.quiet) print(`written: ${paths.join(', ')}`);
  return result;
}
