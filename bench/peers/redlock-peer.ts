// A process of `lock --compare redlock` (forked by bench/lock.ts): C contenders loop
// redlock 4's lock / unlock (ioredis, one Redis) on their resource, in the same contend loop
// as ours (../lib/lock-workload.ts) with the same invariant check. Redlock polls: a contender
// that finds the lock taken retries after `retryDelay` ± `retryJitter` ms, without end
// (retryCount -1) so no contender gives up.
import { Redis as IORedis } from 'ioredis';
import Redlock from 'redlock';
import { serve } from '../lib/child.js';
import { contend as contendLoop, type ContendArgs, type ContendResult, type WithLock } from '../lib/lock-workload.js';

export interface RedlockContendArgs extends ContendArgs {
  url: string;
  retryDelayMs: number;
  retryJitterMs: number;
}

export interface RedlockContendResult extends ContendResult {
  /** Lock or unlock calls that failed (an expired lock, a Redis error). */
  errors: number;
}

/** Lock validity: far longer than any hold, so no lock expires while held. */
const TTL_MS = 10_000;

async function contend(a: RedlockContendArgs): Promise<RedlockContendResult> {
  const client = new IORedis(a.url);
  // ioredis takes the args array redlock 4 passes (its types describe node_redis 3's signature).
  const redlock = new Redlock([client as unknown as Redlock.CompatibleRedisClient], { retryCount: -1, retryDelay: a.retryDelayMs, retryJitter: a.retryJitterMs, driftFactor: 0.01 });
  redlock.on('clientError', () => undefined);
  let errors = 0;
  // Redlock has no fencing token; a failed lock is counted and the contender tries again.
  const withRedlock: WithLock = async (name, critical) => {
    let lock: Redlock.Lock;
    try {
      lock = await redlock.lock(name, TTL_MS);
    } catch {
      errors++;
      return;
    }
    await critical(undefined);
    await lock.unlock().catch(() => errors++);
  };
  // The loops' last operations get as long as one lock's validity to end.
  const r = await contendLoop(a, withRedlock, { prefix: 'bench-redlock-', drainMs: TTL_MS });
  client.disconnect();
  return { ...r, errors };
}

serve({ contend });
