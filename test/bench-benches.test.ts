// Smoke test of every registered benchmark: a tiny run (one short run each) writes the
// metric names the benchmark conventions require. Figures are never checked for speed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommand } from '../bench/lib/options.js';
import { runBench } from '../bench/lib/runner.js';
import { BENCHES } from '../bench/registry.js';
import { hasErlang } from '../bench/lib/erlang.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The metric names outside checks read (benchmark conventions). */
const REQUIRED: Record<string, { metrics: string[]; compare?: Record<string, string[]> }> = {
  'actor-call': { metrics: ['localCallNs', 'awaitFloorNs', 'pQueueNs'] },
  'mesh-rtt': { metrics: ['tcpCallP50Us', 'tcpCallP99Us', 'tcpRawP50Us', 'workerCallP50Us', 'workerRawP50Us', 'pipelinedCallsPerSec'] },
  codec: { metrics: ['msgpackrNs', 'msgpackNs'] },
  lock: { metrics: ['grantsPerSec', 'jain', 'acquireP50Us', 'acquireP99Us', 'violations', 'uncontendedUs', 'rawRttUs'] },
  read: { metrics: ['hitNs', 'keyedHitNs', 'mapGetNs', 'lruGetNs', 'awaitFloorNs'] },
  stampede: { metrics: ['fetches', 'callers', 'fetchMs', 'callerP50Ms', 'callerP99Ms'] },
  replication: { metrics: ['replicationP50Us', 'replicationP99Us', 'meshRttP50Us'] },
};

/**
 * Extra arguments that keep a bench small. Durations leave room for a loaded machine: a
 * figure needs at least one sample (a grant, a refresh) to be a number.
 */
const TINY: Record<string, string[]> = {
  lock: ['--nodes', '2', '--contenders', '2', '--duration', '0.5'],
  stampede: ['--nodes', '2', '--callers', '10'],
  replication: ['--nodes', '2', '--duration', '1'],
};

describe('every bench', () => {
  for (const b of BENCHES) {
    it(`${b.name}: a tiny run writes the required metrics in the result shape`, { timeout: 120_000 }, async () => {
      const cmd = parseCommand([b.name, '--duration', '0.2', '--runs', '1', '--quiet', ...(TINY[b.name] ?? [])], BENCHES);
      if (cmd.kind !== 'run') throw new Error('expected run');
      const result = await runBench(b, cmd.benches[0]!.values, cmd.common, { dir, command: 'smoke', print: () => {} });
      expect(result).toBeDefined();
      const json = JSON.parse(readFileSync(join(dir, `${b.name}.json`), 'utf8'));
      expect(Object.keys(json)).toEqual(['name', 'params', 'env', 'metrics', 'runs', 'compare']);
      expect(json.runs).toHaveLength(1);
      const req = REQUIRED[b.name];
      expect(req, `bench ${b.name} has required metrics listed`).toBeDefined();
      for (const m of req!.metrics) expect(typeof json.metrics[m], `${b.name}.${m}`).toBe('number');
    });
  }
});

describe('lock --compare erlang', () => {
  it.skipIf(!hasErlang())(
    "runs the same workload on Erlang's :global.trans and reports it under compare.erlang",
    { timeout: 120_000 },
    async () => {
      const lock = BENCHES.find((b) => b.name === 'lock')!;
      const cmd = parseCommand(['lock', '--duration', '0.3', '--runs', '1', '--quiet', '--nodes', '2', '--contenders', '2', '--compare', 'erlang'], BENCHES);
      if (cmd.kind !== 'run') throw new Error('expected run');
      const result = await runBench(lock, cmd.benches[0]!.values, cmd.common, { dir, command: 'smoke', print: () => {} });
      const erl = result!.compare.erlang!;
      for (const k of ['grantsPerSec', 'jain', 'acquireP50Us', 'acquireP99Us', 'violations']) expect(typeof erl[k], k).toBe('number');
      expect(erl.violations).toBe(0);
      expect(erl.grantsPerSec).toBeGreaterThan(0);
    },
  );
});
