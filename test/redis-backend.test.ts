// The Redis backend against a real redis-server, driven from several real processes.
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../src/errors.js';
import { redisBackend, type RedisBackend } from '../src/store/backends/redis/index.js';
import { encodeValue } from '../src/store/backends/redis/codec.js';
import { WRITE } from '../src/store/backends/redis/scripts.js';
import { disposeAllPeers, spawnPeer, type Peer } from './helpers/peers.js';
import { hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';

const FIX = fileURLToPath(new URL('./fixtures/redis-peer.ts', import.meta.url));
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let nsCount = 0;
/** A namespace of its own per test. */
const freshNs = (): string => `t${process.pid}-${++nsCount}`;

describe.skipIf(!hasRedis)('redis backend (real redis-server, real processes)', () => {
  let redis: RedisServer;
  const backends: RedisBackend[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await Promise.all(backends.splice(0).map((b) => b.close()));
    await disposeAllPeers();
  });

  const local = (opts: Parameters<typeof redisBackend>[0] = {}): RedisBackend => {
    const b = redisBackend({ url: redis.url, ...opts });
    backends.push(b);
    return b;
  };

  async function peers(n: number, ns: string, opts: Record<string, unknown> = {}): Promise<Peer[]> {
    const ps = await Promise.all(Array.from({ length: n }, () => spawnPeer()));
    await Promise.all(ps.map((p, i) => p.run(FIX, 'open', { url: redis.url, name: `p${i}`, ...opts }, ns)));
    return ps;
  }

  it('one claim wins among concurrent claimers in several processes (single flight)', async () => {
    const ns = freshNs();
    const ps = await peers(4, ns);
    const results = await Promise.all(ps.map((p, i) => p.run<{ fetched: boolean; value: unknown; v: number }>(FIX, 'getOrFetch', 'token', '', 300, `value-${i}`, 60_000)));
    expect(results.filter((r) => r.fetched)).toHaveLength(1);
    const winner = results.find((r) => r.fetched)!;
    for (const r of results) expect(r).toMatchObject({ value: winner.value, v: winner.v });
  });

  it('published values reach every subscribed process, with the value in the message', async () => {
    const ns = freshNs();
    const ps = await peers(3, ns);
    const waits = ps.map((p) => p.waitEvent('snap', (n: string, c: string, _v: number, value: unknown) => n === 'fx' && c === '"usd"' && value === 1234));
    await ps[0]!.run(FIX, 'getOrFetch', 'fx', '"usd"', 0, 1234, 60_000);
    await Promise.all(waits);
    for (const p of ps) expect(await p.run(FIX, 'replica', 'fx', '"usd"')).toMatchObject({ value: 1234 });
  });

  it('writes of entries a process does not want are not handed to it', async () => {
    const ns = freshNs();
    const [a] = await peers(1, ns);
    const b = await spawnPeer();
    await b.run(FIX, 'open', { url: redis.url, name: 'picky' }, ns, true);
    await b.run(FIX, 'follow', 'wanted', '');
    await a!.run(FIX, 'getOrFetch', 'unwanted', '', 0, 'x', 60_000);
    await a!.run(FIX, 'getOrFetch', 'wanted', '', 0, 'y', 60_000);
    // One channel, in order: had the first write been handed on, it came before this one.
    await b.waitEvent('snap', (n: string) => n === 'wanted');
    expect(b.events.filter((e) => e.type === 'snap' && e.args[0] === 'unwanted')).toEqual([]);
  });

  it('a commit after a clear loses (the clear is newer than the lease token)', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns);
    const c = await a!.run<{ kind: string; token: number }>(FIX, 'claim', 'tok', '');
    expect(c.kind).toBe('lease');
    await b!.run(FIX, 'clear', 'tok', '');
    expect(await a!.run(FIX, 'commit', c.token, 'stale', 60_000)).toEqual({ ok: false, reason: 'newer' });
    // Nothing was stored: the next claim gets the lease, not the stale value.
    expect(await b!.run(FIX, 'claim', 'tok', '')).toMatchObject({ kind: 'lease' });
  });

  it('a commit after clearAll (of the expirable, or of the namespace) loses', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns);
    const c1 = await a!.run<{ token: number }>(FIX, 'claim', 'keyed', '"k1"');
    await b!.run(FIX, 'clearAll', 'keyed');
    expect(await a!.run(FIX, 'commit', c1.token, 'stale', 60_000)).toEqual({ ok: false, reason: 'cleared' });
    const c2 = await a!.run<{ token: number }>(FIX, 'claim', 'other', '');
    await b!.run(FIX, 'clearAll');
    expect(await a!.run(FIX, 'commit', c2.token, 'stale', 60_000)).toEqual({ ok: false, reason: 'cleared' });
  });

  it('clearAll drops every key of an expirable, stored before it, on every process', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns);
    await a!.run(FIX, 'getOrFetch', 'keyed', '"k1"', 0, 'v1', 60_000);
    await a!.run(FIX, 'getOrFetch', 'keyed', '"k2"', 0, 'v2', 60_000);
    await a!.run(FIX, 'getOrFetch', 'other', '', 0, 'o', 60_000);
    await b!.waitEvent('snap', (n: string) => n === 'other');
    const cleared = b!.waitEvent('clear', (n: string, c: string) => n === 'keyed' && c === '"k2"');
    await a!.run(FIX, 'clearAll', 'keyed');
    await cleared;
    expect(await b!.run(FIX, 'replica', 'keyed', '"k1"')).toMatchObject({ value: undefined });
    expect(await b!.run(FIX, 'replica', 'other', '')).toMatchObject({ value: 'o' });
    // In Redis too: k1 is gone, `other` stays.
    expect(await b!.run(FIX, 'claim', 'keyed', '"k1"')).toMatchObject({ kind: 'lease' });
    expect(await b!.run(FIX, 'claim', 'other', '')).toMatchObject({ kind: 'value', value: 'o' });
  });

  it('a write whose lease was lost is refused (fenced), while the new holder fetches and after it wrote', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns, { leaseMs: 400 });
    // After the new holder wrote.
    const ca = await a!.run<{ token: number }>(FIX, 'claim', 'tok', '');
    await a!.run(FIX, 'abandon', ca.token); // stops renewing: the lease lapses after 400 ms
    expect(await b!.run(FIX, 'getOrFetch', 'tok', '', 0, 'fresh', 60_000)).toMatchObject({ fetched: true });
    expect(await a!.run(FIX, 'commitRaw', 'tok', '', ca.token, 'stale', 60_000)).toEqual({ ok: false, reason: 'newer' });
    // While the new holder still fetches.
    const cd = await a!.run<{ token: number }>(FIX, 'claim', 'tok2', '');
    await a!.run(FIX, 'abandon', cd.token);
    const fetching = b!.waitEvent('fetching', (n: string) => n === 'tok2');
    const bFetch = b!.run<{ fetched: boolean }>(FIX, 'getOrFetch', 'tok2', '', 1000, 'b-value', 60_000);
    await fetching;
    expect(await a!.run(FIX, 'commitRaw', 'tok2', '', cd.token, 'stale', 60_000)).toEqual({ ok: false, reason: 'lease' });
    expect(await bFetch).toMatchObject({ fetched: true });
    expect(await a!.run(FIX, 'claim', 'tok2', '')).toMatchObject({ kind: 'value', value: 'b-value' });
  });

  it('a failure is told only to the processes waiting on that very lease: a waiter on a later lease is not answered by an older lease\'s failure', async () => {
    const name = freshNs();
    const failures: [string, number, unknown, string][] = [];
    const onRoundFailed = (_n: string, canon: string, token: number, error: unknown, origin: string): void => void failures.push([canon, token, error, origin]);
    const a = await local({ name: 'fa' }).open(name);
    const b = await local({ name: 'fb' }).open(name, { onRoundFailed });
    // b waits on a's lease; a's fetch fails: b is told, with a's token and what a sent.
    const c1 = await a.claim('tok', 'k1');
    if (c1.kind !== 'lease') throw new Error('expected the lease');
    const waiting = new AbortController();
    const b1 = b.acquire('tok', 'k1', { signal: waiting.signal }).catch((err: unknown) => err);
    await expect.poll(async () => (await b.claim('tok', 'k1')).kind).toBe('busy'); // b's own claim, while it waits
    expect(await a.tellRoundFailed('tok', 'k1', c1.lease.token, encodeValue({ message: 'upstream said no' }))).toBe(true);
    await expect.poll(() => failures.length, { timeout: 5_000 }).toBe(1);
    expect(failures[0]).toEqual(['k1', c1.lease.token, { message: 'upstream said no' }, 'fa']);
    waiting.abort(new Error('answered'));
    expect(await b1).toBeInstanceOf(Error);
    await c1.lease.release();
    // A later lease on k2: a's failure message for an older token is not sent (the lease moved on),
    // and b, waiting on the later lease, is not answered with it: it gets the value written under it.
    const old = await a.claim('tok', 'k2');
    if (old.kind !== 'lease') throw new Error('expected the lease');
    await old.lease.release();
    const later = await a.claim('tok', 'k2');
    if (later.kind !== 'lease') throw new Error('expected the lease');
    const b2 = b.acquire('tok', 'k2');
    await expect.poll(async () => (await b.claim('tok', 'k2')).kind).toBe('busy');
    expect(await a.tellRoundFailed('tok', 'k2', old.lease.token, encodeValue({ message: 'stale' }))).toBe(false);
    await later.lease.commit({ v: 0, has: true, value: 'fresh', exp: Date.now() + 60_000, ttl: 60_000, hs: false, st: undefined });
    expect(await b2).toMatchObject({ kind: 'value', snap: { value: 'fresh' } });
    expect(failures).toHaveLength(1);
  });

  it('a write the listener already knows is neither decoded nor handed on, and still wakes the callers waiting on the entry', async () => {
    const name = freshNs();
    const seen: string[] = [];
    const a = await local({ name: 'ka' }).open(name);
    const b = await local({ name: 'kb' }).open(name, { onSnapshot: (_n, canon) => void seen.push(canon), known: (_n, canon) => canon === 'k1' });
    const value = (v: string) => ({ v: 0, has: true, value: v, exp: Date.now() + 60_000, ttl: 60_000, hs: false, st: undefined });
    const c1 = await a.claim('tok', 'k1');
    if (c1.kind !== 'lease') throw new Error('expected the lease');
    const t0 = Date.now();
    const woken = b.waitChange('tok', 'k1', 30_000);
    expect(await c1.lease.commit(value('one'))).toMatchObject({ ok: true });
    await woken;
    expect(Date.now() - t0).toBeLessThan(15_000); // by the message, not the 30 s bound
    // A later write on the same channel arrives after it: by then k1's was skipped.
    const c2 = await a.claim('tok', 'k2');
    if (c2.kind !== 'lease') throw new Error('expected the lease');
    expect(await c2.lease.commit(value('two'))).toMatchObject({ ok: true });
    await expect.poll(() => seen.length, { timeout: 5_000 }).toBe(1);
    expect(seen).toEqual(['k2']);
  });

  it('a lease renewed while the fetch runs outlives leaseMs; the commit is accepted', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns, { leaseMs: 300 });
    const started = a!.waitEvent('fetching');
    const fetch = a!.run<{ fetched: boolean }>(FIX, 'getOrFetch', 'slow', '', 1200, 'slow-value', 60_000);
    await started;
    await delay(700); // more than two leases: only renewals keep it
    expect(await b!.run(FIX, 'claim', 'slow', '')).toMatchObject({ kind: 'busy' });
    expect(await fetch).toMatchObject({ fetched: true });
    expect(await b!.run(FIX, 'claim', 'slow', '')).toMatchObject({ kind: 'value', value: 'slow-value' });
  });

  it('a process killed (kill -9) mid-fetch blocks the others for at most one lease', async () => {
    const ns = freshNs();
    const leaseMs = 1500;
    const [a, b] = await peers(2, ns, { leaseMs });
    const c = await a!.run<{ kind: string }>(FIX, 'claim', 'tok', '');
    expect(c.kind).toBe('lease');
    a!.kill();
    await a!.exited();
    const t0 = Date.now();
    const r = await b!.run<{ fetched: boolean }>(FIX, 'getOrFetch', 'tok', '', 0, 'after-kill', 60_000);
    const waited = Date.now() - t0;
    expect(r.fetched).toBe(true);
    // At most one lease (plus scheduling margin on a loaded machine), not a hang.
    expect(waited).toBeLessThan(leaseMs + 5_000);
  });

  it('a waiter claims again as soon as the lease is released without a write', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns, { leaseMs: 20_000 });
    const c = await a!.run<{ token: number }>(FIX, 'claim', 'tok', '');
    const waiting = b!.run<{ fetched: boolean }>(FIX, 'getOrFetch', 'tok', '', 0, 'b-value', 60_000);
    await delay(200);
    const t0 = Date.now();
    expect(await a!.run(FIX, 'release', c.token)).toBe(true);
    expect(await waiting).toMatchObject({ fetched: true });
    // Woken by the release's message, long before the 20 s lease would have ended.
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('state writes under a lease keep the value and carry versions; a lease taken for a state write sees the current state', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns);
    const r = await a!.run<{ v: number }>(FIX, 'getOrFetch', 'st', '', 0, 'val', 60_000);
    const c = await b!.run<{ kind: string; token: number; state: unknown }>(FIX, 'claim', 'st', '', 'lease');
    expect(c.kind).toBe('lease');
    const w = await b!.run<{ ok: boolean; v: number }>(FIX, 'putState', c.token, { secret: 's1' });
    expect(w.ok).toBe(true);
    expect(w.v).toBeGreaterThan(r.v);
    const w2 = await b!.run<{ ok: boolean; v: number }>(FIX, 'putState', c.token, { secret: 's2' });
    expect(w2.v).toBeGreaterThan(w.v); // a second write of one lease gets a newer version
    await b!.run(FIX, 'release', c.token);
    expect(await a!.run(FIX, 'claim', 'st', '')).toMatchObject({ kind: 'value', value: 'val', v: w2.v });
    const c2 = await a!.run<{ state: unknown; token: number }>(FIX, 'claim', 'st', '', 'lease');
    expect(c2.state).toEqual({ secret: 's2' });
  });

  it('expiry counts on the Redis clock from the commit (a host clock far ahead changes nothing)', async () => {
    const b = local({ name: 'local' });
    const ns = await b.open(freshNs());
    const c = await ns.claim('short', '');
    if (c.kind !== 'lease') throw new Error('expected the lease');
    // `exp` says a year from now (a host clock far ahead); ttl says 300 ms: ttl decides.
    const w = await c.lease.commit({ v: 0, has: true, value: 'brief', exp: Date.now() + 365 * 86_400_000, ttl: 300, hs: false, st: undefined });
    expect(w.ok).toBe(true);
    const hit = await ns.claim('short', '');
    expect(hit.kind).toBe('value');
    if (hit.kind === 'value') {
      expect(hit.snap.ttl).toBeGreaterThan(0);
      expect(hit.snap.ttl).toBeLessThanOrEqual(300);
    }
    await delay(450);
    expect((await ns.claim('short', '')).kind).toBe('lease');
  });

  it('a value that never expires is stored and read as Infinity', async () => {
    const b = local();
    const ns = await b.open(freshNs());
    const c = await ns.claim('forever', '');
    if (c.kind !== 'lease') throw new Error('expected the lease');
    await c.lease.commit({ v: 0, has: true, value: new Date(5), exp: Infinity, ttl: Infinity, hs: false, st: undefined });
    const hit = await ns.claim('forever', '');
    expect(hit).toMatchObject({ kind: 'value', snap: { ttl: Infinity, exp: Infinity, value: new Date(5) } });
  });

  it('replica holders list live processes and drop a killed one within one lease', async () => {
    const ns = freshNs();
    const replicaLeaseMs = 900;
    const [a, b] = await peers(2, ns, { replicaLeaseMs });
    await a!.run(FIX, 'hold', 'tok', '');
    await b!.run(FIX, 'hold', 'tok', '');
    expect(await b!.run(FIX, 'holders', 'tok', '')).toEqual(['p0', 'p1']);
    a!.kill();
    await a!.exited();
    // Three leases later: the killed one is gone, the live one (refreshing) still listed.
    await delay(replicaLeaseMs * 3);
    expect(await b!.run(FIX, 'holders', 'tok', '')).toEqual(['p1']);
  });

  it('after CLIENT KILL TYPE pubsub, the resync brings what was published while the subscriber was away', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns);
    await a!.run(FIX, 'follow', 'tok', '');
    await b!.run(FIX, 'follow', 'tok', '');
    // The kill and the write in one MULTI: the message is published while every subscriber
    // is disconnected, so only the resync after the reconnection can bring it.
    const writer = local({ name: 'writer' });
    const wns = await writer.open(ns);
    const c = await wns.claim('tok', '');
    if (c.kind !== 'lease') throw new Error('expected the lease');
    c.lease.stop();
    const k = wns.keys;
    const { createClient } = await import('@redis/client');
    const raw = createClient({ url: redis.url });
    raw.on('error', () => undefined);
    await raw.connect();
    try {
      const val = encodeValue(['while-away', Date.now() + 60_000]);
      await raw
        .multi()
        .addCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])
        .addCommand(['EVAL', WRITE.source, '4', k.entry('tok', ''), k.lease('tok', ''), k.seq, k.floors, 'tok', '', String(c.lease.token), 'value', '1', '60000', val, '0', '', '1', 'SPUBLISH', k.channel, 'writer'])
        .exec();
    } finally {
      await raw.close();
    }
    // A lost subscriber does not make commands fail meanwhile.
    await expect(a!.run(FIX, 'claim', 'other', '')).resolves.toMatchObject({ kind: 'lease' });
    await Promise.all([a, b].map((p) => p!.waitEvent('snap', (n: string, _c: string, _v: number, value: unknown) => n === 'tok' && value === 'while-away')));
  });

  it('SIGSTOP of redis-server: operations fail fast as unavailable, then recover after SIGCONT', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns, { commandTimeout: 3000 });
    await a!.run(FIX, 'follow', 'tok', '');
    redis.pause();
    try {
      await expect(b!.run(FIX, 'claim', 'tok', '')).rejects.toBeInstanceOf(BackendUnavailableError);
      await b!.waitEvent('avail', (up: boolean) => up === false);
      // Now known down: the next operation fails at once, without waiting for a reply.
      const t0 = Date.now();
      await expect(b!.run(FIX, 'claim', 'tok', '')).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(Date.now() - t0).toBeLessThan(2_500);
      await expect(b!.run(FIX, 'clear', 'tok', '')).rejects.toBeInstanceOf(BackendUnavailableError);
    } finally {
      redis.resume();
    }
    await b!.waitEvent('avail', (up: boolean) => up === true);
    const r = await b!.run<{ fetched: boolean }>(FIX, 'getOrFetch', 'tok', '', 0, 'after-stop', 60_000);
    expect(r.fetched).toBe(true);
    await a!.waitEvent('snap', (n: string, _c: string, _v: number, value: unknown) => n === 'tok' && value === 'after-stop');
  });

  it('restart of redis-server (every key lost): a new value and a clear after it still reach every process', async () => {
    const ns = freshNs();
    const [a, b] = await peers(2, ns);
    const first = await a!.run<{ v: number }>(FIX, 'getOrFetch', 'tok', '', 0, 'before', 60_000);
    await b!.waitEvent('snap', (n: string, _c: string, v: number) => n === 'tok' && v === first.v);
    await redis.restart();
    await Promise.all([a, b].map((p) => p!.waitEvent('avail', (up: boolean) => up === true, 15_000)));
    // Redis forgot the value: a claim takes the lease; the new version is above the old one.
    const second = await a!.run<{ fetched: boolean; v: number }>(FIX, 'getOrFetch', 'tok', '', 0, 'after', 60_000);
    expect(second.fetched).toBe(true);
    expect(second.v).toBeGreaterThan(first.v);
    await b!.waitEvent('snap', (n: string, _c: string, v: number, value: unknown) => n === 'tok' && v === second.v && value === 'after', 15_000);
    const v = await b!.run<number>(FIX, 'clear', 'tok', '');
    await a!.waitEvent('clear', (n: string, _c: string, cv: number) => n === 'tok' && cv === v);
    expect(await a!.run(FIX, 'replica', 'tok', '')).toEqual({ v, value: undefined });
  });
});
