// Smoke tests of the benchmark framework: the command line, `--help`, and the result files
// in the shape the benchmark conventions fix. Tiny durations; speed is never asserted here.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { helpText, parseCommand } from '../bench/lib/options.js';
import { runBench } from '../bench/lib/runner.js';
import { idleLoop } from '../bench/lib/raw.js';
import { decodeHistogram, jain, median, mergeHistograms, newHistogram, encodeHistogram } from '../bench/lib/stats.js';
import { BenchUsageError, type BenchModule, type CommonOptions } from '../bench/lib/types.js';
import { BENCHES } from '../bench/registry.js';
import { intList } from '../bench/scale.js';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

const dir = mkdtempSync(join(tmpdir(), 'bench-framework-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const common = (o: Partial<CommonOptions> = {}): CommonOptions => ({
  durationS: 0.05,
  runs: 3,
  json: undefined,
  quiet: true,
  pinned: false,
  ...o,
});

/** A bench whose runs return known figures, to check medians and the file shapes. */
const fake: BenchModule = {
  name: 'fake',
  summary: 'test double',
  defaultDurationS: 1,
  latency: true,
  options: { size: { type: 'number', integer: true, min: 1, default: 4, description: 'size' } },
  params: (v) => ({ size: v.size as number }),
  async run(_p, ctx) {
    const x = [10, 30, 20][ctx.run]!;
    return { metrics: { fooNs: x, barPerSec: 1000 / x }, compare: { peer: { fooNs: x * 2 } }, notes: [`run ${ctx.run}`] };
  },
};

describe('bench command line', () => {
  it('parses a bench name, common options and bench options', () => {
    const cmd = parseCommand(['fake', '--duration', '0.5', '--runs', '3', '--size', '7', '--quiet', '--json', 'x.json'], [fake]);
    expect(cmd.kind).toBe('run');
    if (cmd.kind !== 'run') return;
    expect(cmd.common).toMatchObject({ durationS: 0.5, runs: 3, quiet: true, json: 'x.json' });
    expect(cmd.benches[0]!.values.size).toBe(7);
  });

  it('takes defaults when options are omitted (runs 5, bench duration)', () => {
    const cmd = parseCommand(['fake'], [fake]);
    if (cmd.kind !== 'run') throw new Error('expected run');
    expect(cmd.common.runs).toBe(5);
    expect(Number.isNaN(cmd.common.durationS)).toBe(true);
    expect(cmd.benches[0]!.values.size).toBe(4);
  });

  it('rejects unknown benches, unknown options and bad numbers with a usage error naming them', () => {
    expect(() => parseCommand(['nope'], [fake])).toThrow(/unknown bench "nope"/);
    expect(() => parseCommand(['fake', '--bogus'], [fake])).toThrow(BenchUsageError);
    expect(() => parseCommand(['fake', '--runs', '0'], [fake])).toThrow(/--runs must be at least 1/);
    expect(() => parseCommand(['fake', '--size', '1.5'], [fake])).toThrow(/--size must be an integer/);
    expect(() => parseCommand(['fake', '--duration', 'abc'], [fake])).toThrow(/--duration must be a number/);
  });

  it('`all` runs every registered bench with common options only', () => {
    const cmd = parseCommand(['all', '--runs', '1'], BENCHES);
    if (cmd.kind !== 'run') throw new Error('expected run');
    expect(cmd.benches.map((b) => b.module.name)).toEqual(BENCHES.map((b) => b.name));
    expect(() => parseCommand(['all', '--nodes', '3'], BENCHES)).toThrow(BenchUsageError);
  });

  it('stampede refuses --phases on Redis, where there are no mesh steps to time', () => {
    const stampede = BENCHES.find((b) => b.name === 'stampede')!;
    const parse = (args: string[]) => {
      const cmd = parseCommand(['stampede', ...args], BENCHES);
      if (cmd.kind !== 'run') throw new Error('expected run');
      return stampede.params(cmd.benches[0]!.values, cmd.common);
    };
    expect(() => parse(['--phases', '--backend', 'redis'])).toThrow(/--phases .* does not apply to --backend redis/);
    expect(parse(['--phases'])).toMatchObject({ phases: true, backend: 'mesh' });
  });

  it('every registered bench parses tiny durations and its own defaults', () => {
    for (const b of BENCHES) {
      const cmd = parseCommand([b.name, '--duration', '0.05', '--runs', '1', '--quiet'], BENCHES);
      if (cmd.kind !== 'run') throw new Error('expected run');
      expect(cmd.benches[0]!.module).toBe(b);
      expect(() => b.params(cmd.benches[0]!.values, cmd.common)).not.toThrow();
    }
  });

  it('--help lists every bench and every option', () => {
    expect(parseCommand(['--help'], BENCHES).kind).toBe('help');
    expect(parseCommand(['fake', '-h'], [fake])).toEqual({ kind: 'help', bench: fake });
    const text = helpText(BENCHES);
    for (const b of BENCHES) {
      expect(text).toContain(b.name);
      for (const o of Object.keys(b.options)) expect(text).toContain(`--${o}`);
    }
    for (const o of ['--duration', '--runs', '--json', '--quiet', '--pin']) expect(text).toContain(o);
  });

  it('the CLI prints help and exits 2 on bad usage', () => {
    const help = spawnSync(process.execPath, ['--import', 'tsx', 'bench/cli.ts', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const b of BENCHES) expect(help.stdout).toContain(b.name);
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'bench/cli.ts', 'no-such-bench'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown bench');
  });
});

describe('bench --pin', () => {
  const taskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  it.skipIf(!taskset)('re-executes under taskset -c 0 and says so in the table and the JSON', () => {
    const out = join(dir, 'pin');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/cli.ts', 'actor-call', '--duration', '0.05', '--runs', '1', '--pin', '--quiet'], {
      encoding: 'utf8',
      env: { ...process.env, EXPIRABLE_BENCH_RESULTS_DIR: out },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('pinned: every process on CPU 0 (taskset -c 0)');
    expect(JSON.parse(readFileSync(join(out, 'actor-call.json'), 'utf8')).params.pinned).toBe(true);
  });

  it('runs unpinned without --pin', () => {
    const out = join(dir, 'nopin');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/cli.ts', 'actor-call', '--duration', '0.05', '--runs', '1', '--quiet'], {
      encoding: 'utf8',
      env: { ...process.env, EXPIRABLE_BENCH_RESULTS_DIR: out },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('unpinned');
    expect(JSON.parse(readFileSync(join(out, 'actor-call.json'), 'utf8')).params.pinned).toBe(false);
  });
});

describe('bench results', () => {
  it('writes JSON in the conventions shape with medians over runs, and a Markdown table', async () => {
    const out: string[] = [];
    const jsonCopy = join(dir, 'copy', 'fake.json');
    const result = await runBench(fake, { size: 4 }, common({ json: jsonCopy }), { dir, command: 'npm run bench -- fake', print: (t) => out.push(t) });
    const json = JSON.parse(readFileSync(join(dir, 'fake.json'), 'utf8'));
    expect(json).toEqual(result);
    expect(Object.keys(json)).toEqual(['name', 'params', 'env', 'metrics', 'runs', 'compare']);
    expect(json.name).toBe('fake');
    expect(json.params).toEqual({ size: 4, durationS: 0.05, runs: 3, pinned: false });
    expect(Object.keys(json.env)).toEqual(['node', 'cpus', 'os']);
    expect(json.env.node).toBe(process.version);
    expect(json.runs).toEqual([
      { fooNs: 10, barPerSec: 100 },
      { fooNs: 30, barPerSec: 1000 / 30 },
      { fooNs: 20, barPerSec: 50 },
    ]);
    expect(json.metrics).toEqual({ fooNs: 20, barPerSec: 50 });
    expect(json.compare).toEqual({ peer: { fooNs: 40 } });
    expect(JSON.parse(readFileSync(jsonCopy, 'utf8'))).toEqual(json);
    const md = readFileSync(join(dir, 'fake.md'), 'utf8');
    expect(md).toContain('| metric |');
    expect(md).toContain('npm run bench -- fake');
    expect(md).toContain('unpinned');
    expect(out.join('\n')).toContain('fooNs');
  });

  it('a pinned run says so in the table', async () => {
    const out: string[] = [];
    await runBench(fake, { size: 1 }, common({ runs: 1, pinned: true }), { dir, command: 'x', print: (t) => out.push(t) });
    expect(out.join('\n')).toContain('taskset -c 0');
  });
});

describe('bench charts and sweeps', () => {
  const svgOf = (path: string): string => {
    const text = readFileSync(path, 'utf8');
    expect(XMLValidator.validate(text)).toBe(true);
    expect(Object.keys(new XMLParser().parse(text))).toContain('svg');
    return text;
  };

  it('a bench without its own chart gets <name>.svg with a bar per metric that has a unit', async () => {
    await runBench(fake, { size: 4 }, common(), { dir, command: 'x', print: () => {} });
    const svg = svgOf(join(dir, 'fake.svg'));
    expect(svg).toContain('data-label="fooNs"');
    expect(svg).toContain('data-label="barPerSec"');
  });

  it("a bench's own charts are written as <name>.svg and <name>-<suffix>.svg", async () => {
    const charted: BenchModule = {
      ...fake,
      name: 'charted',
      charts: (r) => [
        { title: 'head', panels: [{ title: 'p', unit: 'ns', groups: [{ bars: [{ label: 'ours', value: r.metrics.fooNs!, kind: 'ours' }] }] }] },
        { suffix: 'side', title: 'side', panels: [{ title: 'q', unit: '/s', groups: [{ bars: [{ label: 'peer', value: 1, kind: 'peer' }] }] }] },
      ],
    };
    await runBench(charted, { size: 4 }, common(), { dir, command: 'x', print: () => {} });
    expect(svgOf(join(dir, 'charted.svg'))).toContain('data-value="20"'); // the median of 10, 30, 20
    expect(svgOf(join(dir, 'charted-side.svg'))).toContain('data-kind="peer"');
  });

  it('a sweeping bench: runs holds one entry per point (medians over runs), metrics its own medians, its default --runs applies', async () => {
    let calls = 0;
    const sweep: BenchModule = {
      ...fake,
      name: 'sweep',
      defaultRuns: 3,
      async run(_p, ctx) {
        calls++;
        const x = [1, 3, 2][ctx.run]!;
        const entries = [
          { n: 2, fooNs: x },
          { n: 4, fooNs: 10 * x },
        ];
        return { metrics: entries[1]!, entries };
      },
    };
    const cmd = parseCommand(['sweep'], [sweep]);
    if (cmd.kind !== 'run') throw new Error('expected run');
    const r = await runBench(sweep, cmd.benches[0]!.values, { ...cmd.common, durationS: 0.01, quiet: true }, { dir, command: 'x', print: () => {} });
    expect(calls).toBe(3);
    expect(r!.runs).toEqual([
      { n: 2, fooNs: 2 },
      { n: 4, fooNs: 20 },
    ]);
    expect(r!.metrics).toEqual({ n: 4, fooNs: 20 });
    const explicit = parseCommand(['sweep', '--runs', '1'], [sweep]);
    if (explicit.kind !== 'run') throw new Error('expected run');
    calls = 0;
    await runBench(sweep, explicit.benches[0]!.values, { ...explicit.common, durationS: 0.01, quiet: true }, { dir, command: 'x', print: () => {} });
    expect(calls).toBe(1);
  });

  it('scale lists: comma-separated integers, sorted, with a usage error naming the option', () => {
    expect(intList('nodes', '4,2,4', 2)).toEqual([2, 4]);
    expect(() => intList('nodes', '1,2', 2)).toThrow(/--nodes must be a comma-separated list of integers of at least 2/);
    expect(() => intList('keys', '10,,20', 1)).toThrow(/--keys/);
    expect(() => intList('keys', '1e3x', 1)).toThrow(BenchUsageError);
    const scale = BENCHES.find((b) => b.name === 'scale')!;
    const cmd = parseCommand(['scale', '--nodes', '2,x'], BENCHES);
    if (cmd.kind !== 'run') throw new Error('expected run');
    expect(() => scale.params(cmd.benches[0]!.values, cmd.common)).toThrow(/--nodes/);
  });
});

describe('bench statistics', () => {
  it('median, Jain index and merged HDR histograms', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(jain([5, 5, 5, 5])).toBe(1);
    expect(jain([10, 0, 0, 0])).toBeCloseTo(0.25);
    const a = newHistogram();
    const b = newHistogram();
    for (let i = 1; i <= 100; i++) a.recordValue(i);
    for (let i = 101; i <= 200; i++) b.recordValue(i);
    const m = mergeHistograms([encodeHistogram(a), b]);
    expect(m.totalCount).toBe(200);
    expect(m.getValueAtPercentile(50)).toBeGreaterThanOrEqual(99);
    expect(m.getValueAtPercentile(50)).toBeLessThanOrEqual(101);
  });
});

describe('bench idle loop', () => {
  it('runs the operation every gapMs, both ends idle between, and leaves the first run out of the figures', { timeout: 30_000 }, async () => {
    const starts: number[] = [];
    const ends: number[] = [];
    const r = await idleLoop(
      async () => {
        starts.push(performance.now());
        // The first run is slow (a cold path); the others quick.
        await new Promise((res) => setTimeout(res, starts.length === 1 ? 400 : 1));
        ends.push(performance.now());
      },
      300,
      30,
    );
    const h = decodeHistogram(r.histogram);
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(r.count).toBe(starts.length - 1);
    expect(h.totalCount).toBe(r.count);
    // The 400 ms first run is in no figure: every recorded one is far below it.
    expect(h.maxValue / 1e6).toBeLessThan(300);
    // A gap of (about) gapMs before each run after the first: timers may fire up to 1 ms early.
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - ends[i - 1]!).toBeGreaterThanOrEqual(29);
  });
});
