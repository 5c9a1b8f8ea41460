// The store on the Redis backend in one process, against a real redis-server started by the
// test: the `backend` option, close() closing what the backend opened, a commit fenced by a
// clear it never heard of, a miss served from the claim (no lease), `replicas()` right away,
// and a process cut from Redis (SIGSTOP of the server) serving its valid values, then 'unavailable'.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { InvalidOptionError, SerializationError } from '../src/errors.js';
import { redisBackend } from '../src/index.js';
import { ok } from '../src/store/result.js';
import { hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';
import { EventLog, gate, uniqueNamespace } from './fixtures/store-tools.js';
import { RedisKeys } from '../src/store/backends/redis/keys.js';
import { CLEAR_ALL } from '../src/store/backends/redis/scripts.js';
import { createClient } from '@redis/client';

describe('defineExpirables backend option', () => {
  it('a backend that is not from redisBackend() is an InvalidOptionError naming `backend`', () => {
    const define = () => defineExpirables({ a: expirable({ fetch: async () => ok(1, Infinity) }) }, { namespace: uniqueNamespace('bad'), backend: { url: 'redis://x' } as never });
    expect(define).toThrow(InvalidOptionError);
    expect(define).toThrow(/backend.*redisBackend\(\)/s);
  });
});

describe.skipIf(!hasRedis)('the store on Redis, one process', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const clients = async (): Promise<number> => Number((await redis.cli('INFO', 'clients')).match(/connected_clients:(\d+)/)![1]);

  it('values go through Redis: a second store with its own backend takes the value without a fetch; replicas lists both; close() closes the connection', async () => {
    const namespace = uniqueNamespace('redis');
    let fetches = 0;
    const defs = { token: expirable({ fetch: async () => ok(`tok-${++fetches}`, Date.now() + 60_000) }) };
    const a = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'proc-a' }) });
    // The backend connects on first use: nothing of this store is connected yet.
    const before = await clients();
    expect(await a.tokenOrThrow()).toBe('tok-1');
    // The other store: another "process" with its own name, node and backend.
    const { startNode } = await import('../src/node.js');
    const node = await startNode({ name: `b-${process.pid}` });
    const b = defineExpirables(defs, { namespace, node, backend: redisBackend({ url: redis.url, name: 'proc-b' }) });
    expect(await b.tokenOrThrow()).toBe('tok-1');
    expect(fetches).toBe(1);
    expect(b.stats().token).toMatchObject({ fetches: 0, adopted: 1 });
    // b runs on a node: it is listed by the node's name (API §7), a by its backend's.
    await expect.poll(() => a.replicas('token'), { timeout: 5_000 }).toEqual([`b-${process.pid}`, 'proc-a'].sort());
    expect(await clients()).toBeGreaterThan(before);
    await b.close();
    await a.close();
    await node.close();
    await expect.poll(clients, { timeout: 5_000 }).toBe(before);
  });

  it('fetch:end on the fetching process and replicate on the other carry the version Redis stored', async () => {
    const namespace = uniqueNamespace('version');
    using log = new EventLog(namespace);
    let fetches = 0;
    const defs = { token: expirable({ fetch: async () => ok(`tok-${++fetches}`, Date.now() + 400) }) };
    const a = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'proc-a' }) });
    const { startNode } = await import('../src/node.js');
    const node = await startNode({ name: `v-${process.pid}` });
    const b = defineExpirables(defs, { namespace, node, backend: redisBackend({ url: redis.url, name: 'proc-b' }) });
    try {
      expect(await a.tokenOrThrow()).toBe('tok-1');
      const end1 = await log.next((e) => e.channel === 'fetchEnd' && e.node === 'proc-a');
      // b takes the value from Redis (its claim answers it), as Redis stored it.
      expect(await b.tokenOrThrow()).toBe('tok-1');
      const took = await log.next((e) => e.channel === 'replicate' && e.node !== 'proc-a');
      expect(took.version).toBe(end1.version);
      // Once expired, a fetches again; the write reaches b's replica by pub/sub.
      const seen = log.events.length;
      await expect.poll(async () => (await a.tokenOrThrow()) === 'tok-2', { timeout: 5_000, interval: 100 }).toBe(true);
      const end2 = await log.next((e) => e.channel === 'fetchEnd' && e.node === 'proc-a', 10_000, seen);
      const push = await log.next((e) => e.channel === 'replicate' && e.how === 'push' && e.node !== 'proc-a', 10_000, seen);
      expect(push.version).toBe(end2.version);
      expect(end2.version).toBeGreaterThan(end1.version as number);
    } finally {
      await b.close();
      await a.close();
      await node.close();
    }
  });

  it('a fetch overtaken by a clear it never heard of is refused by Redis, and its own process stops serving what it fetched', async () => {
    const namespace = uniqueNamespace('fenced');
    let fetches = 0;
    const hold = gate();
    const started = gate();
    const defs = {
      token: expirable({
        keyed: true,
        fetch: async (key: string) => {
          if (++fetches === 1) {
            started.open();
            await hold.promise;
          }
          return ok(`${key}-${fetches}`, Date.now() + 60_000);
        },
      }),
    };
    using log = new EventLog(namespace);
    const a = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'fence-a' }) });
    try {
      const first = a.token('k');
      await started.promise;
      // A clear of every key while a's fetch runs, published while no subscriber listens (the
      // kill and the clear in one MULTI): a never hears of it, so only Redis's fence stops its commit.
      const k = new RedisKeys(namespace);
      const raw = createClient({ url: redis.url });
      raw.on('error', () => undefined);
      await raw.connect();
      try {
        await raw
          .multi()
          .addCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])
          .addCommand(['EVAL', CLEAR_ALL.source, '2', k.seq, k.floors, 'token', 'SPUBLISH', k.channel, 'test'])
          .exec();
      } finally {
        await raw.close();
      }
      hold.open();
      expect(await first).toMatchObject({ ok: true, value: 'k-1' }); // its callers get what it fetched
      await log.next((e) => e.channel === 'refresh' && e.phase === 'refused');
      // ... but a does not keep serving it: the next call fetches anew.
      expect(a.replicas('token', 'k')).toEqual([]);
      expect(await a.tokenOrThrow('k')).toBe('k-2');
      expect(fetches).toBe(2);
    } finally {
      await a.close();
    }
  });

  it('a process whose replica is empty takes the value Redis holds from its claim: no fetch, no lease taken', async () => {
    const namespace = uniqueNamespace('claimed');
    let fetches = 0;
    const defs = { token: expirable({ fetch: async () => ok(`tok-${++fetches}`, Date.now() + 60_000) }) };
    const a = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'claim-a' }) });
    const b = defineExpirables(defs, { namespace: `${namespace}-b`, backend: redisBackend({ url: redis.url, name: 'claim-b' }) });
    let c: typeof a | undefined;
    try {
      expect(await a.tokenOrThrow()).toBe('tok-1');
      // Every lease hands out a fencing token from the namespace's counter: unchanged, no lease.
      const seq = new RedisKeys(namespace).seq;
      const before = await redis.cli('GET', seq);
      // c joins after the value was written: its replica is empty, the value's message long gone.
      c = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'claim-c' }) });
      expect(await c.tokenOrThrow()).toBe('tok-1');
      expect(c.stats().token).toMatchObject({ misses: 1, fetches: 0, adopted: 1 });
      expect(await redis.cli('GET', seq)).toBe(before);
      expect(fetches).toBe(1);
      // The counter does move when a lease is taken (this check can fail): b's namespace is empty.
      const seqB = new RedisKeys(`${namespace}-b`).seq;
      expect(await b.tokenOrThrow()).toBe('tok-2');
      expect((await redis.cli('GET', seqB)).trim()).not.toBe('');
    } finally {
      await c?.close();
      await b.close();
      await a.close();
    }
  });

  it('replicas(): a process that holds a value lists itself at once; the first call of one that never called reads the holders', async () => {
    const namespace = uniqueNamespace('replicas');
    const defs = { token: expirable({ fetch: async () => ok('tok', Date.now() + 60_000) }) };
    // A replica lease of a minute: the periodic read (every 20 s) cannot be what the test sees.
    const a = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'rep-a', replicaLeaseMs: 60_000 }) });
    const b = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'rep-b', replicaLeaseMs: 60_000 }) });
    try {
      expect(a.replicas('token')).toEqual([]);
      await a.tokenOrThrow();
      expect(a.replicas('token')).toEqual(['rep-a']); // synchronous: itself, right after its fetch
      // b never called anything: its first call answers what b knows (nothing) and reads Redis.
      expect(b.replicas('token')).toEqual([]);
      await expect.poll(() => b.replicas('token'), { timeout: 5_000 }).toEqual(['rep-a']);
      await b.tokenOrThrow();
      expect(b.replicas('token')).toEqual(['rep-a', 'rep-b']);
      // b's registration is published: a reads the holders again at once.
      await expect.poll(() => a.replicas('token'), { timeout: 5_000 }).toEqual(['rep-a', 'rep-b']);
      // And b's leaving (a clear drops every replica's value).
      await a.clear('token');
      expect(a.replicas('token')).not.toContain('rep-a'); // itself out at once
      await expect.poll(() => a.replicas('token'), { timeout: 5_000 }).toEqual([]);
      await expect.poll(() => b.replicas('token'), { timeout: 5_000 }).toEqual([]);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('replicas() names a process by its node where the store runs on one, by the backend name otherwise', async () => {
    const namespace = uniqueNamespace('replicas-node');
    const defs = { token: expirable({ fetch: async () => ok('tok', Date.now() + 60_000) }) };
    const { startNode } = await import('../src/node.js');
    const node = await startNode({ name: 'redis-replica-node' });
    const a = defineExpirables(defs, { namespace, node, backend: redisBackend({ url: redis.url, name: 'not-this-name' }) });
    const b = defineExpirables(defs, { namespace, backend: redisBackend({ url: redis.url, name: 'rep-plain' }) });
    try {
      await a.tokenOrThrow();
      expect(a.replicas('token')).toEqual(['redis-replica-node']);
      await b.tokenOrThrow();
      await expect.poll(() => b.replicas('token'), { timeout: 5_000 }).toEqual(['redis-replica-node', 'rep-plain']);
      expect(b.stats().token!.fetches).toBe(0);
    } finally {
      await b.close();
      await a.close();
      await node.close();
    }
  });

  it('cut from Redis: a valid value keeps being served; once expired the call reads unavailable within a bounded time', async () => {
    const namespace = uniqueNamespace('cut');
    const ttl = 1_500;
    const { startNode } = await import('../src/node.js');
    const node = await startNode({ name: `cut-${process.pid}` });
    const E = defineExpirables(
      { token: expirable({ fetch: async () => ok('tok', Date.now() + ttl) }) },
      { namespace, node, backend: redisBackend({ url: redis.url, name: 'proc-cut', commandTimeout: 300, connectTimeout: 1_000 }) },
    );
    try {
      const first = await E.token();
      expect(first.ok).toBe(true);
      const expiresAt = (first as { expiresAt: number }).expiresAt;
      redis.pause();
      try {
        // Served from the replica here, no round trip.
        expect(await E.token()).toMatchObject({ ok: true, value: 'tok' });
        // After expiry: never the expired value, never a hang.
        await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 50));
        const t0 = Date.now();
        const r = await E.token();
        expect(r.ok).toBe(false);
        expect(!r.ok && r.error.reason).toBe('unavailable');
        expect(Date.now() - t0).toBeLessThan(5_000);
      } finally {
        redis.resume();
      }
      // Back: the next call fetches again.
      await expect.poll(async () => (await E.token()).ok, { timeout: 10_000 }).toBe(true);
    } finally {
      await E.close();
      await node.close();
    }
  });

  it('a value that cannot be serialized: SerializationError to the caller, nothing written to Redis, the next call fetches again', async () => {
    const namespace = uniqueNamespace('unfit');
    let fetches = 0;
    const E = defineExpirables(
      { fn: expirable({ fetch: async () => (++fetches, ok(() => 1, Date.now() + 60_000)) }) },
      { namespace, backend: redisBackend({ url: redis.url, name: 'proc-unfit' }) },
    );
    try {
      const r = await E.fn();
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toBeInstanceOf(SerializationError);
      expect(E.replicas('fn')).toEqual([]);
      // Nothing of the namespace's entry was written (its lease, told the failure before its release, may still be there).
      expect((await redis.cli('--scan', '--pattern', `*${namespace}*:e:*fn*`)).trim()).toBe('');
      expect((await E.fn()).ok).toBe(false);
      expect(fetches).toBe(2);
    } finally {
      await E.close();
    }
  });
});
