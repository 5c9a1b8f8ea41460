// The lock benchmark's shared workload (bench/lib/lock-workload.ts): the contend loop every
// lock is measured with (ours and redlock's), driven here by small in-process lock
// operations, and the figures built from what the processes report. Speed is never asserted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contend, contendFigures, type ContendArgs, type ContendResult, type WithLock } from '../bench/lib/lock-workload.js';
import { encodeHistogram, jain, newHistogram } from '../bench/lib/stats.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-lock-workload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** A workload on a fresh invariant file. */
function workload(o: Partial<ContendArgs> = {}): ContendArgs {
  const file = join(dir, `invariant-${files++}.bin`);
  const resources = o.resources ?? 1;
  writeFileSync(file, Buffer.alloc(16 * resources));
  return { nodes: 1, nodeIndex: 0, contenders: 4, resources, holdMs: 1, warmupMs: 20, durationMs: 200, file, ...o };
}

/** One in-process FIFO mutex per name: a lock that excludes. */
function mutexes(token?: () => unknown): WithLock {
  const tails = new Map<string, Promise<void>>();
  return async (name, critical) => {
    const before = tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    tails.set(name, before.then(() => mine));
    await before;
    try {
      await critical(token?.());
    } finally {
      release();
    }
  };
}

const total = (r: ContendResult): number => r.counts.reduce((a, b) => a + b, 0);

describe('contend (the loop every lock of the lock benchmark is measured with)', () => {
  it('counts the grants of each contender after the warm-up and finds no violation under a lock that excludes', { timeout: 30_000 }, async () => {
    const lock = mutexes();
    let granted = 0;
    const r = await contend(workload({ warmupMs: 100 }), (name, critical) => lock(name, (token) => (granted++, critical(token))), { prefix: 'r-', drainMs: 5_000 });
    expect(r.counts).toHaveLength(4);
    for (const c of r.counts) expect(c).toBeGreaterThan(0);
    expect(r.violations).toBe(0);
    expect(r.stuck).toBe(0);
    expect(r.elapsedNs).toBeGreaterThanOrEqual(200e6 * 0.9);
    expect(total(r)).toBeLessThan(granted); // the warm-up's grants are not counted
  });

  it('finds violations under an operation that does not exclude', { timeout: 30_000 }, async () => {
    const r = await contend(workload({ holdMs: 5 }), async (_name, critical) => critical(undefined), { prefix: 'r-', drainMs: 5_000 });
    expect(total(r)).toBeGreaterThan(0);
    expect(r.violations).toBeGreaterThan(0);
  });

  it('checks the order of numeric fencing tokens, and not that of tokens that are not numbers', { timeout: 30_000 }, async () => {
    let next = 0;
    const rising = await contend(workload(), mutexes(() => ++next), { prefix: 'r-', drainMs: 5_000 });
    expect(rising.tokenChecks).toBeGreaterThan(0);
    expect(rising.tokenViolations).toBe(0);
    const same = await contend(workload(), mutexes(() => 7), { prefix: 'r-', drainMs: 5_000 });
    expect(same.tokenViolations).toBeGreaterThan(0);
    const none = await contend(workload(), mutexes(() => 'opaque'), { prefix: 'r-', drainMs: 5_000 });
    expect(none.tokenChecks).toBe(0);
  });

  it('spreads contender i of process n over resource (n x C + i) mod R, named by the prefix', { timeout: 30_000 }, async () => {
    const names = new Set<string>();
    const lock = mutexes();
    await contend(workload({ nodeIndex: 1, contenders: 2, resources: 3 }), (name, critical) => (names.add(name), lock(name, critical)), { prefix: 'bench-x-', drainMs: 5_000 });
    expect([...names].sort()).toEqual(['bench-x-0', 'bench-x-2']);
  });

  it('tries again after an operation that returns without a grant', { timeout: 30_000 }, async () => {
    let calls = 0;
    let refused = 0;
    const lock = mutexes();
    const r = await contend(
      workload(),
      async (name, critical) => {
        if (++calls % 2 === 0) {
          refused++;
          await new Promise<void>((res) => setImmediate(res));
          return;
        }
        await lock(name, critical);
      },
      { prefix: 'r-', drainMs: 5_000 },
    );
    expect(refused).toBeGreaterThan(0);
    for (const c of r.counts) expect(c).toBeGreaterThan(0);
    expect(r.violations).toBe(0);
  });

  it('reports a contender whose last operation never ends as stuck after drainMs, instead of hanging', { timeout: 30_000 }, async () => {
    let stopping = false;
    let hung = false;
    const lock = mutexes();
    const w = workload({ contenders: 3 });
    const done = contend(
      w,
      (name, critical) => {
        if (stopping && !hung) {
          hung = true;
          return new Promise<void>(() => undefined);
        }
        return lock(name, critical);
      },
      { prefix: 'r-', drainMs: 300 },
    );
    setTimeout(() => (stopping = true), w.warmupMs + w.durationMs / 2);
    const r = await done;
    expect(hung).toBe(true);
    expect(r.stuck).toBe(1);
  });

  it('fails with the error of an operation that fails', { timeout: 30_000 }, async () => {
    // The failure comes after the end, while the loops' last operations are awaited.
    let stopping = false;
    let failed = false;
    const lock = mutexes();
    const boom = new Error('acquire failed for good');
    const w = workload({ durationMs: 400 });
    const r = contend(
      w,
      (name, critical) => {
        if (stopping && !failed) {
          failed = true;
          return new Promise<void>((_, reject) => setTimeout(() => reject(boom), w.durationMs));
        }
        return lock(name, critical);
      },
      { prefix: 'r-', drainMs: 10_000 },
    );
    setTimeout(() => (stopping = true), w.warmupMs + w.durationMs / 2);
    await expect(r).rejects.toBe(boom);
  });

  it('an operation that fails in the middle of the run fails it with that error, the other loops stopped, nothing left unhandled', { timeout: 30_000 }, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      let calls = 0;
      const lock = mutexes();
      const boom = new Error('the lock service went away');
      const w = workload({ durationMs: 2_000 });
      const t0 = Date.now();
      const r = contend(w, (name, critical) => (++calls === 50 ? Promise.reject(boom) : lock(name, critical)), { prefix: 'r-', drainMs: 10_000 });
      await expect(r).rejects.toBe(boom);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      const callsAtEnd = calls;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(calls).toBe(callsAtEnd); // every loop stopped
      expect(Date.now() - t0).toBeGreaterThanOrEqual(w.warmupMs + w.durationMs - 50); // the run still ends when it was due to
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('contendFigures (the figures of ours and of redlock over their processes)', () => {
  const part = (counts: number[], latenciesUs: number[], elapsedNs: number, violations: number): ContendResult => {
    const h = newHistogram();
    for (const v of latenciesUs) h.recordValue(v);
    return { counts, histogram: encodeHistogram(h), violations, tokenViolations: 0, tokenChecks: 0, elapsedNs, stuck: 0 };
  };

  it('sums grants over the longest elapsed time, merges latencies and sums violations', () => {
    const parts = [part([10, 30], [100, 200, 300], 2e9, 1), part([20], [1000], 1.5e9, 2)];
    const f = contendFigures(parts);
    expect(Object.keys(f)).toEqual(['grantsPerSec', 'jain', 'acquireP50Us', 'acquireP99Us', 'acquireMaxUs', 'violations']);
    expect(f.grantsPerSec).toBe(60 / 2);
    expect(f.jain).toBe(jain([10, 30, 20]));
    expect(f.acquireP50Us).toBeCloseTo(200, -1);
    expect(f.acquireMaxUs).toBeGreaterThanOrEqual(1000);
    expect(f.acquireMaxUs).toBeLessThan(1002);
    expect(f.violations).toBe(3);
  });

  it('gives NaN latencies when no grant was counted', () => {
    const f = contendFigures([part([0, 0], [], 1e9, 0)]);
    expect(f.grantsPerSec).toBe(0);
    expect(f.acquireP50Us).toBeNaN();
    expect(f.acquireP99Us).toBeNaN();
    expect(f.acquireMaxUs).toBeNaN();
  });
});
