// A process of `lock --compare redlock` (forked by bench/lock.ts): C contenders loop
// redlock 4's lock / unlock (ioredis, one Redis) on their resource, with the same invariant
// check as ours. Redlock polls: a contender that finds the lock taken retries after
// `retryDelay` ± `retryJitter` ms, without end (retryCount -1) so no contender gives up.
import { Redis as IORedis } from 'ioredis';
import Redlock from 'redlock';
import { serve } from '../lib/child.js';
import { Invariant } from '../lib/invariant.js';
import { encodeHistogram, newHistogram } from '../lib/stats.js';

export interface RedlockContendArgs {
  url: string;
  nodeIndex: number;
  contenders: number;
  resources: number;
  holdMs: number;
  warmupMs: number;
  durationMs: number;
  file: string;
  retryDelayMs: number;
  retryJitterMs: number;
}

export interface RedlockContendResult {
  counts: number[];
  /** Acquire latency (call of lock to its grant, retries included), µs, encoded HDR histogram. */
  histogram: string;
  violations: number;
  elapsedNs: number;
  /** Lock or unlock calls that failed (an expired lock, a Redis error). */
  errors: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Lock validity: far longer than any hold, so no lock expires while held. */
const TTL_MS = 10_000;

async function contend(a: RedlockContendArgs): Promise<RedlockContendResult> {
  const client = new IORedis(a.url);
  // ioredis takes the args array redlock 4 passes (its types describe node_redis 3's signature).
  const redlock = new Redlock([client as unknown as Redlock.CompatibleRedisClient], { retryCount: -1, retryDelay: a.retryDelayMs, retryJitter: a.retryJitterMs, driftFactor: 0.01 });
  redlock.on('clientError', () => undefined);
  const inv = new Invariant(a.file);
  const h = newHistogram();
  const counts = new Array<number>(a.contenders).fill(0);
  let measuring = false;
  let stop = false;
  let errors = 0;
  const now = process.hrtime.bigint;
  const loop = async (c: number): Promise<void> => {
    const global = a.nodeIndex * a.contenders + c;
    const id = global + 1;
    const resource = global % a.resources;
    const name = `bench-redlock-${resource}`;
    while (!stop) {
      const t0 = now();
      let lock: Redlock.Lock;
      try {
        lock = await redlock.lock(name, TTL_MS);
      } catch {
        errors++;
        continue;
      }
      const waited = Number(now() - t0) / 1000;
      inv.enter(resource, id, undefined);
      if (a.holdMs > 0) await sleep(a.holdMs);
      inv.leave(resource, id);
      if (measuring) {
        h.recordValue(Math.max(1, Math.round(waited)));
        counts[c]!++;
      }
      await lock.unlock().catch(() => errors++);
    }
  };
  const loops = Array.from({ length: a.contenders }, (_, c) => loop(c));
  await sleep(a.warmupMs);
  measuring = true;
  const start = now();
  await sleep(a.durationMs);
  measuring = false;
  const elapsedNs = Number(now() - start);
  stop = true;
  await Promise.race([Promise.all(loops), sleep(TTL_MS)]);
  inv.close();
  client.disconnect();
  return { counts, histogram: encodeHistogram(h), violations: inv.violations, elapsedNs, errors };
}

serve({ contend });
