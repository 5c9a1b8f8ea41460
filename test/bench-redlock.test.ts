// Smoke test of `lock --compare redlock`: a tiny run reports redlock's figures under
// compare.redlock with the names the benchmark conventions require. Figures are never
// checked for speed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommand } from '../bench/lib/options.js';
import { runBench } from '../bench/lib/runner.js';
import { BENCHES } from '../bench/registry.js';
import { hasRedisServer } from '../bench/lib/redis.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-redlock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lock --compare redlock', () => {
  it.skipIf(!hasRedisServer())('runs the same workload on redlock 4 over a redis-server it starts, under compare.redlock', { timeout: 120_000 }, async () => {
    const lock = BENCHES.find((b) => b.name === 'lock')!;
    const cmd = parseCommand(['lock', '--duration', '0.5', '--runs', '1', '--quiet', '--nodes', '2', '--contenders', '2', '--compare', 'redlock'], BENCHES);
    if (cmd.kind !== 'run') throw new Error('expected run');
    const result = await runBench(lock, cmd.benches[0]!.values, cmd.common, { dir, command: 'smoke', print: () => {} });
    const r = result!.compare.redlock!;
    for (const k of ['grantsPerSec', 'jain', 'acquireP50Us', 'acquireP99Us', 'violations']) expect(Number.isFinite(r[k]), k).toBe(true);
    expect(r.violations).toBe(0);
    expect(r.grantsPerSec).toBeGreaterThan(0);
    expect(result!.compare.erlang).toBeUndefined();
  });
});
