// The workload of the lock benchmark, one for every lock it measures (ours, redlock's with
// `--compare redlock`, Erlang's :global.trans with `--compare erlang`): its parameters
// (`LockWorkload`); the contend loop a Node process runs on the lock operation it is given
// (`contend`); and the figures over the grants and acquire latencies (`lockFigures`,
// `contendFigures`), so every lock is measured and reported alike.
import { Invariant } from './invariant.js';
import { encodeHistogram, jain, mergeHistograms, newHistogram, type Histogram } from './stats.js';

/** N processes (or BEAM nodes) x C contenders on R resources, holding each grant H ms, for D ms. */
export interface LockWorkload {
  /** Processes (or BEAM nodes) that contend. */
  nodes: number;
  /** Concurrent contenders per process. */
  contenders: number;
  /** Resources the contenders spread over (contender i takes resource i mod R). */
  resources: number;
  /** How long each grant holds the lock, ms. */
  holdMs: number;
  /** Contention before anything is counted, ms. */
  warmupMs: number;
  /** Contention counted, ms. */
  durationMs: number;
  /** The shared invariant file (resources x 16 zero bytes). */
  file: string;
}

/** How often a running workload reports its progress, ms. */
const TICK_MS = 200;

/**
 * Reports, every TICK_MS from now, the fraction of the workload's time (warm-up and counted
 * contention) that has passed, capped at 1; returns the function that stops it. One for every
 * lock the benchmark runs the workload on.
 */
export function progressTicker(w: LockWorkload, onTick: (fraction: number) => void): () => void {
  const started = Date.now();
  const total = w.warmupMs + w.durationMs;
  const ticker = setInterval(() => onTick(Math.min(1, (Date.now() - started) / total)), TICK_MS);
  return () => clearInterval(ticker);
}

/** What one process is asked to run: the workload, and which of its processes this is. */
export interface ContendArgs extends LockWorkload {
  nodeIndex: number;
}

/** What one process reports. */
export interface ContendResult {
  /** Grants per contender while counting. */
  counts: number[];
  /** Acquire latency (start of the lock operation to the start of the critical section, retries included), µs, encoded HDR histogram. */
  histogram: string;
  violations: number;
  tokenViolations: number;
  tokenChecks: number;
  elapsedNs: number;
  /** Contenders whose last lock operation had not ended `drainMs` after the end. */
  stuck: number;
}

/**
 * The lock operation measured: takes the lock on `name`, runs `critical` with the grant's
 * fencing token (undefined for a lock without tokens) while holding it, then releases it. It
 * may return without calling `critical` when an acquire fails (counting the failure itself):
 * the contender then tries again.
 */
export type WithLock = (name: string, critical: (token: unknown) => Promise<void>) => Promise<void>;

export interface ContendOptions {
  /** Lock names: this prefix and the resource's index. */
  prefix: string;
  /** How long after the end the loops' last operations may take before those still pending are reported as stuck, ms. */
  drainMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `a.contenders` contenders that loop `withLock` on their resource for the warm-up and
 * the duration, each grant holding the lock `a.holdMs` ms, checking mutual exclusion (and the
 * order of numeric fencing tokens) on the shared invariant.
 */
export async function contend(a: ContendArgs, withLock: WithLock, o: ContendOptions): Promise<ContendResult> {
  const inv = new Invariant(a.file);
  const h = newHistogram();
  const counts = new Array<number>(a.contenders).fill(0);
  let measuring = false;
  let stop = false;
  const now = process.hrtime.bigint;
  const loop = async (c: number): Promise<void> => {
    const global = a.nodeIndex * a.contenders + c;
    const id = global + 1;
    const resource = global % a.resources;
    const name = `${o.prefix}${resource}`;
    while (!stop) {
      const t0 = now();
      await withLock(name, async (token) => {
        const waited = Number(now() - t0) / 1000;
        inv.enter(resource, id, token);
        if (a.holdMs > 0) await sleep(a.holdMs);
        inv.leave(resource, id);
        if (measuring) {
          h.recordValue(Math.max(1, Math.round(waited)));
          counts[c]!++;
        }
      });
    }
  };
  const loops = Array.from({ length: a.contenders }, (_, c) => loop(c));
  // Handled from the start: a loop whose lock operation fails stops the others and fails the
  // run with its error (left unhandled until the end, it would crash the process first).
  let finished = 0;
  let failure: { error: unknown } | undefined;
  for (const l of loops) {
    l.then(
      () => finished++,
      (error: unknown) => {
        finished++;
        failure ??= { error };
        stop = true;
      },
    );
  }
  await sleep(a.warmupMs);
  measuring = true;
  const start = now();
  await sleep(a.durationMs);
  measuring = false;
  const elapsedNs = Number(now() - start);
  stop = true;
  // Each loop ends after its operation in flight; one that never ends is reported as stuck
  // instead of hanging the bench.
  await Promise.race([Promise.allSettled(loops), sleep(o.drainMs)]);
  if (failure) throw failure.error;
  const stuck = a.contenders - finished;
  inv.close();
  return {
    counts,
    histogram: encodeHistogram(h),
    violations: inv.violations,
    tokenViolations: inv.tokenViolations,
    tokenChecks: inv.tokenChecks,
    elapsedNs,
    stuck,
  };
}

/** The figures reported for every lock measured (the names BENCH.md fixes). */
export interface LockFigures {
  grantsPerSec: number;
  jain: number;
  acquireP50Us: number;
  acquireP99Us: number;
  acquireMaxUs: number;
  violations: number;
}

/** The figures of one run: grants per contender, acquire latencies (µs), time counted, violations. */
export function lockFigures(r: { counts: readonly number[]; histogram: Histogram; elapsedS: number; violations: number }): LockFigures {
  const h = r.histogram;
  return {
    grantsPerSec: r.counts.reduce((a, b) => a + b, 0) / r.elapsedS,
    jain: jain(r.counts),
    acquireP50Us: h.totalCount ? h.getValueAtPercentile(50) : NaN,
    acquireP99Us: h.totalCount ? h.getValueAtPercentile(99) : NaN,
    acquireMaxUs: h.totalCount ? h.maxValue : NaN,
    violations: r.violations,
  };
}

/** The figures of one run over what each of its processes reported from `contend`. */
export function contendFigures(parts: readonly ContendResult[]): LockFigures {
  return lockFigures({
    counts: parts.flatMap((x) => x.counts),
    histogram: mergeHistograms(parts.map((x) => x.histogram)),
    elapsedS: Math.max(...parts.map((x) => x.elapsedNs)) / 1e9,
    violations: parts.reduce((a, x) => a + x.violations, 0),
  });
}
