// What a new user trips on first, each pinned: replicas seen from a node that has not called
// the expirable yet, one upstream call per failed round for the whole cluster, and a script
// whose caller waits on the library staying alive until it has its answer.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ExpirableError, SerializationError } from '../src/errors.js';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { fail, ok } from '../src/store/result.js';
import { localCluster } from './fixtures/store-mesh.js';
import { gate, uniqueNamespace } from './fixtures/store-tools.js';

const soon = (ms: number) => Date.now() + ms;

describe('replicas(name) on a node that has not used the expirable', () => {
  it('lists the node that fetched, on every node, once membership has converged', async () => {
    // Pins: a store with an explicit node attached only on its first call, so an observing
    // node answered [] for good.
    await using c = await localCluster(2);
    const [n1, n2] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const namespace = uniqueNamespace('observe');
    const defs = () => ({ x: expirable({ fetch: async () => ok('v', soon(60_000)) }) });
    const A = defineExpirables(defs(), { node: n1, namespace });
    const B = defineExpirables(defs(), { node: n2, namespace });
    expect(B.replicas('x')).toEqual([]);
    expect(await A.xOrThrow()).toBe('v');
    await expect.poll(() => B.replicas('x'), { timeout: 5_000 }).toEqual([n1.name]);
    expect(A.replicas('x')).toEqual([n1.name]);
    expect(B.stats().x).toMatchObject({ hits: 0, misses: 0, fetches: 0 });
    await Promise.all([A.close(), B.close()]);
  });
});

describe('a failed fetch is tried once per round, not once per waiting node', () => {
  it('3 nodes x 10 callers against a failing upstream: 1 upstream call, every caller gets its failure; the next call starts a new round', async () => {
    // Pins: each node took its own turn at the lock and fetched again (3 calls in a row,
    // the last node's callers waiting 3 fetch times).
    await using c = await localCluster(3);
    const namespace = uniqueNamespace('fail-round');
    let calls = 0;
    const g = gate();
    const started = gate();
    const defs = () => ({
      token: expirable({
        fetch: async () => {
          calls++;
          started.open();
          await g.promise;
          return fail(new Error('upstream is down'));
        },
      }),
    });
    const stores = c.nodes.map((node) => defineExpirables(defs(), { node, namespace }));
    const first = stores[0]!.token(); // this node wins the lock
    await started.promise;
    const rest = stores.flatMap((E, i) => Array.from({ length: i === 0 ? 9 : 10 }, () => E.token()));
    // Every other node's round is queued on the lock before the fetch fails.
    await expect.poll(() => stores.slice(1).every((E) => E.stats().token.misses === 10), { timeout: 5_000 }).toBe(true);
    g.open();
    const results = await Promise.all([first, ...rest]);
    expect(calls).toBe(1);
    expect(results).toHaveLength(30);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error).toBeInstanceOf(ExpirableError);
      expect(r.error.reason).toBe('fetch_failed');
      expect(r.error.message).toContain('upstream is down');
    }
    // Failures are not cached: the next call, on any node, starts a new round.
    expect((await stores[2]!.token()).ok).toBe(false);
    expect(calls).toBe(2);
    await Promise.all(stores.map((E) => E.close()));
  });
});

describe('a caller waiting on the library keeps the process alive', () => {
  const script = fileURLToPath(new URL('./fixtures/exit-script.ts', import.meta.url));
  const run = (mode: string): Promise<{ code: number | null; out: string; err: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out: out.trim(), err });
      });
    });

  it("a fetch that never settles reads 'timeout' at top level instead of exit code 13", async () => {
    // Pins: the fetch timeout's timer was unref'd, so the process ended with an unsettled
    // top-level await (exit code 13) before the caller had its answer.
    const r = await run('pending');
    expect(r, r.err).toMatchObject({ code: 0, out: 'timeout' });
  });

  it('an actor call whose handler never answers rejects with its timeout at top level', async () => {
    // Pins: the call-timeout timer was unref'd, so the script ended with exit code 13.
    const r = await run('call');
    expect(r, r.err).toMatchObject({ code: 0, out: 'CallTimeoutError' });
  });

  it('a script that is done exits by itself: idle timers (eager refresh) do not hold it', async () => {
    const r = await run('idle');
    expect(r, r.err).toMatchObject({ code: 0, out: '42' });
  });
});

describe('cluster values round-trip, or fail loudly', () => {
  it('Map, Set, Date, BigInt and typed arrays read the same on a replica as where they were fetched', async () => {
    await using c = await localCluster(2);
    const namespace = uniqueNamespace('types');
    const value = { m: new Map<string, number>([['a', 1]]), s: new Set([1, 2]), d: new Date(5), big: 2n ** 80n, bytes: new Uint8Array([1, 2]), f: new Float64Array([0.5]) };
    const defs = () => ({ v: expirable({ fetch: async () => ok(value, soon(60_000)) }) });
    const [A, B] = c.nodes.map((node) => defineExpirables(defs(), { node, namespace }));
    const here = await A!.vOrThrow();
    const there = await B!.vOrThrow();
    expect(B!.stats().v.fetches).toBe(0);
    for (const got of [here, there]) {
      expect(got.m).toBeInstanceOf(Map);
      expect(got.s).toBeInstanceOf(Set);
      expect(got.d).toBeInstanceOf(Date);
      expect(got.bytes.constructor).toBe(Uint8Array);
      expect(got.f.constructor).toBe(Float64Array);
      expect(got).toEqual(value);
    }
    await Promise.all([A!.close(), B!.close()]);
  });

  it('a value with a function inside is a SerializationError naming the expirable; nothing is stored; the next call fetches again', async () => {
    // Pins: the value was cached where it was fetched, its push failed silently and every
    // node fetched its own copy.
    await using c = await localCluster(2);
    const namespace = uniqueNamespace('unfit');
    let fetches = 0;
    const defs = () => ({ client: expirable({ fetch: async () => (fetches++, ok({ token: 't', refresh: () => 1 }, soon(60_000))) }) });
    const [A, B] = c.nodes.map((node) => defineExpirables(defs(), { node, namespace }));
    const r = await A!.client();
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(SerializationError);
      expect(r.error).toBeInstanceOf(ExpirableError);
      expect(r.error.reason).toBe('invalid_result');
      expect(r.error.message).toContain('client');
      expect(r.error.message).toContain('value.refresh is a function');
    }
    await expect(A!.clientOrThrow()).rejects.toBeInstanceOf(SerializationError);
    expect(fetches).toBe(2);
    expect(A!.replicas('client')).toEqual([]);
    // Local scope keeps accepting any value.
    const L = defineExpirables({ fn: expirable({ scope: 'local', fetch: async () => ok(() => 42, soon(60_000)) }) }, { node: c.nodes[0]!, namespace: uniqueNamespace('local-fn') });
    expect((await L.fnOrThrow())()).toBe(42);
    await Promise.all([A!.close(), B!.close(), L.close()]);
  });
});
