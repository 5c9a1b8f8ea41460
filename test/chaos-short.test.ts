// A short fixed-seed chaos run (3 nodes, 60 s, every fault kind) through the real command
// line: real node processes, real faults (network namespaces where the machine allows,
// else the mesh fault hook), every checker over the history, all of them strict (the two
// findings they were once relaxed for are fixed: see docs/chaos.md, "Findings").
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { STATE_DIR } from '../chaos/netns.js';

// Kept when the run fails, so its history can be studied (the path is in the failure message).
const dir = mkdtempSync(join(tmpdir(), 'chaos-short-'));
let passed = false;
afterAll(() => {
  if (passed) rmSync(dir, { recursive: true, force: true });
});

describe('chaos (short run)', () => {
  it('3 nodes, 60 s, every fault kind, seed 20261203: no violation, a complete report', async () => {
    const json = join(dir, 'report.json');
    const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/cli.ts', '--nodes', '3', '--duration', '60', '--seed', '20261203',
      '--json', json], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, `${output}\nhistory and report kept in ${dir}`).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(report).sort()).toEqual(
      ['convergeP50Ms', 'convergeP99Ms', 'durationS', 'faults', 'heapGrowthBytesPerFault', 'mode', 'nodes', 'operations', 'seed', 'violations'].sort(),
    );
    expect(['netns', 'hook']).toContain(report.mode);
    expect(report.seed).toBe(20261203);
    expect(report.operations as number).toBeGreaterThan(1000);
    const faults = report.faults as Record<string, number>;
    for (const kind of ['kill', 'stop', 'partition', 'restart', 'slow']) expect(faults[kind], kind).toBeGreaterThanOrEqual(1);
    const violations = report.violations as Record<string, number>;
    expect(Object.keys(violations).sort()).toEqual(['expired-read', 'fencing', 'fetch-once', 'lock-exclusion', 'membership', 'monotonic-versions', 'no-hang', 'resources']);
    expect(Object.values(violations).every((n) => n === 0), output).toBe(true);
    expect(readFileSync(join(dir, 'report.svg'), 'utf8')).toContain('<svg');
    expect(readFileSync(join(dir, 'report.history.jsonl'), 'utf8').split('\n').length).toBeGreaterThan(1000);
    // The run removed what it made: its state file is gone.
    if (existsSync(STATE_DIR)) {
      for (const f of readdirSync(STATE_DIR).filter((x) => x.endsWith('.json'))) {
        expect(JSON.parse(readFileSync(join(STATE_DIR, f), 'utf8')).pid).not.toBe(child.pid);
      }
    }
    passed = true;
  }, 300_000);
});
