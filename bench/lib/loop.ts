// Timed loops for in-process micro benchmarks. Variants measured against each other are
// interleaved in short slices (A B C, B C A, ...) over the whole duration, so a slow phase of
// the machine hits all of them alike; each variant gets a warm-up first so the JIT has
// settled before anything is counted. Time is read once per batch, not per operation.

export interface Variant<T> {
  name: string;
  op: () => T;
}

export interface InterleaveOptions {
  /** Total measuring time for all variants together, ms. */
  durationMs: number;
  /** Warm-up per variant before measuring, ms. @default 10% of the duration, at most 300 */
  warmupMs?: number;
  /** Operations between two clock reads. */
  batch: number;
  /** Slices per variant. @default 10 */
  rounds?: number;
  /** Called with the fraction done after each slice. */
  onProgress?: (fraction: number) => void;
}

/** Nanoseconds per operation of each variant. */
export type NsPerOp = Record<string, number>;

const now = (): bigint => process.hrtime.bigint();

/** Sink that keeps results alive so the loops are not optimized away. */
export let sink: unknown;

async function sliceAsync(op: () => Promise<unknown>, batch: number, ms: number): Promise<[ops: number, ns: number]> {
  const start = now();
  const end = start + BigInt(Math.round(ms * 1e6));
  let ops = 0;
  let t = start;
  do {
    for (let i = 0; i < batch; i++) sink = await op();
    ops += batch;
    t = now();
  } while (t < end);
  return [ops, Number(t - start)];
}

function sliceSync(op: () => unknown, batch: number, ms: number): [ops: number, ns: number] {
  const start = now();
  const end = start + BigInt(Math.round(ms * 1e6));
  let ops = 0;
  let t = start;
  do {
    for (let i = 0; i < batch; i++) sink = op();
    ops += batch;
    t = now();
  } while (t < end);
  return [ops, Number(t - start)];
}

/** Interleaved measurement of async variants (each op awaited before the next starts). */
export async function interleaveAsync(variants: readonly Variant<Promise<unknown>>[], o: InterleaveOptions): Promise<NsPerOp> {
  return interleave(variants, o, (v, ms) => sliceAsync(v.op, o.batch, ms));
}

/** Interleaved measurement of synchronous variants. */
export async function interleaveSync(variants: readonly Variant<unknown>[], o: InterleaveOptions): Promise<NsPerOp> {
  return interleave(variants, o, async (v, ms) => {
    const r = sliceSync(v.op, o.batch, ms);
    await new Promise<void>((resolve) => setImmediate(resolve)); // let the progress bar draw
    return r;
  });
}

async function interleave<V extends Variant<unknown>>(
  variants: readonly V[],
  o: InterleaveOptions,
  slice: (v: V, ms: number) => Promise<[number, number]>,
): Promise<NsPerOp> {
  const rounds = o.rounds ?? 10;
  const warmup = o.warmupMs ?? Math.min(300, o.durationMs * 0.1);
  for (const v of variants) await slice(v, warmup / variants.length);
  const sliceMs = o.durationMs / (rounds * variants.length);
  const ops = new Map<string, number>();
  const ns = new Map<string, number>();
  const total = rounds * variants.length;
  let done = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length]!;
      const [n, t] = await slice(v, sliceMs);
      ops.set(v.name, (ops.get(v.name) ?? 0) + n);
      ns.set(v.name, (ns.get(v.name) ?? 0) + t);
      o.onProgress?.(++done / total);
    }
  }
  const out: NsPerOp = {};
  for (const v of variants) out[v.name] = ns.get(v.name)! / ops.get(v.name)!;
  return out;
}
