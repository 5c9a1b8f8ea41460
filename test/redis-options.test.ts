// redisBackend's options, a server that cannot be reached, a client handed in, and the
// library without @redis/client installed.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createClient } from '@redis/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, fromWire, InvalidOptionError, toWire } from '../src/errors.js';
import { redisBackend, type RedisBackendOptions } from '../src/store/backends/redis/index.js';
import { freePort, hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';

const optionOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return (err as InvalidOptionError).option;
  }
  return undefined;
};

describe('redisBackend options', () => {
  it.each<[string, unknown, string]>([
    ['no url nor client', {}, 'url'],
    ['not an object', undefined, 'options'],
    ['an http URL', { url: 'http://127.0.0.1:6379' }, 'url'],
    ['not a URL', { url: 'localhost:6379' }, 'url'],
    ['a non-string url', { url: 6379 }, 'url'],
    ['both url and client', { url: 'redis://127.0.0.1:6379', client: { sendCommand() {}, on() {} } }, 'url'],
    ['a client that is not one', { client: {} }, 'client'],
    ['cluster with a client', { client: { sendCommand() {}, on() {} }, cluster: true }, 'cluster'],
    ['an empty name', { url: 'redis://h', name: '' }, 'name'],
    ['a negative leaseMs', { url: 'redis://h', leaseMs: -1 }, 'leaseMs'],
    ['a NaN replicaLeaseMs', { url: 'redis://h', replicaLeaseMs: Number.NaN }, 'replicaLeaseMs'],
    ['a string connectTimeout', { url: 'redis://h', connectTimeout: '3000' }, 'connectTimeout'],
    ['an infinite commandTimeout', { url: 'redis://h', commandTimeout: Infinity }, 'commandTimeout'],
  ])('%s: InvalidOptionError naming `%s`', (_what, options, option) => {
    expect(optionOf(() => redisBackend(options as RedisBackendOptions))).toBe(option);
  });

  it('BackendUnavailableError has a code, names the backend, and survives the wire', () => {
    const err = new BackendUnavailableError('redis', 'no reply within 2000 ms', { cause: new Error('socket') });
    expect(err.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(err.message).toBe('redis backend unavailable: no reply within 2000 ms');
    const back = fromWire(structuredClone(toWire(err)));
    expect(back).toBeInstanceOf(BackendUnavailableError);
    expect(back.message).toBe(err.message);
    expect((back as BackendUnavailableError).backend).toBe('redis');
  });

  it('accepts redis:// and rediss:// URLs, and names the process <hostname>-<pid> by default', () => {
    const b = redisBackend({ url: 'rediss://user:pw@cache.internal:6380/2' });
    expect(b.name).toMatch(new RegExp(`-${process.pid}$`));
    expect(redisBackend({ url: 'redis://127.0.0.1', name: 'web-1' }).name).toBe('web-1');
  });

  it('an unreachable server: open fails with BackendUnavailableError after connectTimeout, never hangs', async () => {
    const port = await freePort(); // nothing listens there
    const b = redisBackend({ url: `redis://127.0.0.1:${port}`, connectTimeout: 300 });
    try {
      const t0 = Date.now();
      await expect(b.open('x')).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(b.available).toBe(false);
    } finally {
      await b.close();
    }
  });

  it('the library loads without @redis/client; redisBackend() then says which package to install', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', fileURLToPath(new URL('./fixtures/hide-redis-client.mjs', import.meta.url)), fileURLToPath(new URL('./fixtures/redis-missing-client.ts', import.meta.url))], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { hidden: boolean; libraryLoaded: boolean; threw: boolean; message: string };
    expect(out.hidden).toBe(true); // the package really was out of reach
    expect(out.libraryLoaded).toBe(true);
    expect(out.threw).toBe(true);
    expect(out.message).toContain('npm install @redis/client');
  });
});

describe.skipIf(!hasRedis)('redisBackend with a client handed in', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('uses a connected client without connecting or closing it', async () => {
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const b = redisBackend({ client, name: 'given' });
      const ns = await b.open('given-ns');
      const c = await ns.claim('tok', '');
      expect(c.kind).toBe('lease');
      if (c.kind === 'lease') await c.lease.commit({ v: 0, has: true, value: 42, exp: Date.now() + 60_000, ttl: 60_000, hs: false, st: undefined });
      expect(await ns.claim('tok', '')).toMatchObject({ kind: 'value', snap: { value: 42 } });
      await b.close();
      expect(client.isOpen).toBe(true);
      expect(await client.ping()).toBe('PONG');
    } finally {
      await client.close();
    }
  });
});

describe('redis keys and published messages', () => {
  it('every key and the channel of a namespace share its hash tag; names cannot collide', async () => {
    const { RedisKeys } = await import('../src/store/backends/redis/keys.js');
    const k = new RedisKeys('My.App');
    for (const key of [k.seq, k.floors, k.channel, k.entry('a', 'b'), k.lease('a', 'b'), k.holders('a', 'b')]) expect(key.startsWith('{es:My.App}:')).toBe(true);
    expect(k.entry('a:b', 'c')).not.toBe(k.entry('a', 'b:c'));
  });

  it('a message that is not one of ours is ignored, not thrown', async () => {
    const { parsePublished } = await import('../src/store/backends/redis/codec.js');
    expect(parsePublished(Buffer.from('hello'))).toBeUndefined();
    expect(parsePublished(Buffer.from([0, 0, 0, 200, 1, 2]))).toBeUndefined();
    expect(parsePublished(Buffer.alloc(0))).toBeUndefined();
  });
});
