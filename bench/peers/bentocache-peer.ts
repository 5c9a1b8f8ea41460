// A process of the stampede benchmark's bentocache comparison (forked by bench/stampede.ts,
// driven over IPC): bentocache 1.x with a memory L1, Redis as L2 and the Redis bus, all on
// the bench's one redis-server. `stampede` runs `callers` concurrent `getOrSet` of one cold
// key from the shared monotonic instant `startAt`, with a factory that sleeps `fetchMs`,
// exactly as store-peer.ts does for ours.
import { serve } from '../lib/child.js';
import { encodeHistogram, newHistogram } from '../lib/stats.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = process.hrtime.bigint;

interface Bento {
  getOrSet<T>(options: { key: string; ttl?: string | number; factory: () => Promise<T> }): Promise<T>;
  disconnect(): Promise<void>;
}

let bento: Bento | undefined;

serve({
  /** Connects bentocache to `url`; keys are under `prefix`. */
  async setup({ url, prefix }: { url: string; prefix: string }): Promise<null> {
    const { BentoCache, bentostore } = await import('bentocache');
    const { memoryDriver } = await import('bentocache/drivers/memory');
    const { redisDriver, redisBusDriver } = await import('bentocache/drivers/redis');
    const connection = redisOptions(url);
    const b = new BentoCache({
      default: 'cache',
      prefix,
      stores: {
        cache: bentostore()
          .useL1Layer(memoryDriver({ maxSize: '10mb' }))
          .useL2Layer(redisDriver({ connection }))
          .useBus(redisBusDriver({ connection })),
      },
    });
    bento = b as unknown as Bento;
    // Open the connections before anything is measured.
    await bento.getOrSet({ key: `${prefix}-warm`, ttl: '1h', factory: async () => true });
    return null;
  },
  async stampede({ key, callers, startAt, fetchMs }: { key: string; callers: number; startAt: string; fetchMs: number }) {
    const b = bento!;
    const at = BigInt(startAt);
    const wait = Number(at - now()) / 1e6;
    if (wait > 2) await sleep(wait - 2);
    while (now() < at); // the last 2 ms spun, so every process starts together
    const h = newHistogram();
    let fetches = 0;
    let failures = 0;
    const durations: number[] = [];
    const factory = async (): Promise<string> => {
      fetches++;
      const t0 = now();
      if (fetchMs > 0) await sleep(fetchMs);
      durations.push(Number(now() - t0) / 1e6);
      return `token-${process.pid}-${key}`;
    };
    await Promise.all(
      Array.from({ length: callers }, async () => {
        const t0 = now();
        try {
          await b.getOrSet({ key, ttl: '1h', factory });
        } catch {
          failures++;
        }
        h.recordValue(Math.max(1, Math.round(Number(now() - t0) / 1000)));
      }),
    );
    return { histogram: encodeHistogram(h), fetches, fetchMs: durations, failures };
  },
  async close(): Promise<null> {
    await bento?.disconnect();
    bento = undefined;
    return null;
  },
});

function redisOptions(url: string): { host: string; port: number; password?: string; db?: number } {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
  };
}
