// Smoke tests of the benches with `--backend redis` (stampede, read, replication), each run
// very briefly against a real redis-server started here: the result holds the metric names
// the benchmark conventions require, with sane values. Figures are never checked for speed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand } from '../bench/lib/options.js';
import { runBench } from '../bench/lib/runner.js';
import { BenchUsageError, type BenchResult } from '../bench/lib/types.js';
import { BENCHES } from '../bench/registry.js';
import { hasRedis, startRedis, type RedisServer } from './helpers/redis-server.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs `argv` as the command line would; resolves with the result, the JSON written and how
 * long the run took (ms, wall clock: no time the bench reports from it can be longer).
 */
async function run(argv: string[]): Promise<{ result: BenchResult; json: BenchResult; ranMs: number }> {
  const cmd = parseCommand([...argv, '--runs', '1', '--quiet'], BENCHES);
  if (cmd.kind !== 'run') throw new Error('expected run');
  const { module, values } = cmd.benches[0]!;
  const t0 = performance.now();
  const result = await runBench(module, values, cmd.common, { dir, command: 'smoke', print: () => {} });
  const ranMs = performance.now() - t0;
  if (!result) throw new Error(`${module.name} was skipped`);
  const json = JSON.parse(readFileSync(join(dir, `${module.name}.json`), 'utf8')) as BenchResult;
  expect(Object.keys(json)).toEqual(['name', 'params', 'env', 'metrics', 'runs', 'compare']);
  expect(json.params.backend).toBe('redis');
  const svg = readFileSync(join(dir, `${module.name}.svg`), 'utf8');
  expect(XMLValidator.validate(svg)).toBe(true);
  expect(Object.keys(new XMLParser().parse(svg))).toContain('svg');
  expect(svg).toContain('on Redis');
  return { result, json, ranMs };
}

const numbers = (m: Record<string, number>, names: string[]): void => {
  for (const n of names) expect(typeof m[n], n).toBe('number');
};

/** How many times Redis ran `command` (INFO commandstats), 0 if never. */
async function calls(redis: RedisServer, command: string): Promise<number> {
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await redis.cli('INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

describe('--backend', () => {
  it('takes mesh or redis only, and the error names the option', () => {
    for (const bench of ['stampede', 'read', 'replication']) {
      expect(() => parseCommand([bench, '--backend', 'memcached'], BENCHES)).toThrow(BenchUsageError);
      expect(() => parseCommand([bench, '--backend', 'memcached'], BENCHES)).toThrow(/--backend must be one of mesh, redis/);
    }
  });

  it('--redis needs --backend redis and a redis:// URL; the error names the option', () => {
    for (const name of ['stampede', 'read', 'replication']) {
      const bench = BENCHES.find((b) => b.name === name)!;
      const params = (argv: string[]): unknown => {
        const cmd = parseCommand([name, ...argv], BENCHES);
        if (cmd.kind !== 'run') throw new Error('expected run');
        return bench.params(cmd.benches[0]!.values, cmd.common);
      };
      expect(() => params(['--redis', 'redis://127.0.0.1:6379'])).toThrow(/--redis applies with --backend redis only/);
      expect(() => params(['--backend', 'redis', '--redis', 'localhost:6379'])).toThrow(BenchUsageError);
      expect(() => params(['--backend', 'redis', '--redis', 'localhost:6379'])).toThrow(/--redis must be a redis:\/\/ or rediss:\/\/ URL/);
      expect(params(['--backend', 'redis', '--redis', 'redis://127.0.0.1:6379'])).toMatchObject({ backend: 'redis', redis: 'redis://127.0.0.1:6379' });
      expect(params([])).toMatchObject({ backend: 'mesh', redis: '' });
    }
  });
});

describe.skipIf(!hasRedis)('the benches on Redis, against a redis-server started here', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('stampede: ours fetches once per stampede through that Redis; bentocache runs side by side on it under compare.bentocache', { timeout: 180_000 }, async () => {
    const evalsBefore = await calls(redis, 'evalsha');
    const { json, ranMs } = await run(['stampede', '--backend', 'redis', '--redis', redis.url, '--nodes', '2', '--callers', '10', '--fetch-ms', '20', '--duration', '0.2']);
    const m = json.metrics;
    numbers(m, ['fetches', 'callers', 'fetchMs', 'callerP50Ms', 'callerP99Ms']);
    expect(m.fetches).toBe(1);
    expect(m.callers).toBe(20);
    expect(m.failures).toBe(0);
    expect(m.fetchMs).toBeGreaterThanOrEqual(19);
    // The 10 callers of the process that fetches (half of them) wait the whole 20 ms fetch;
    // the slowest caller of each stampede waits at least its own fetch (HDR buckets: 0.1%);
    // no caller waits longer than the run.
    expect(m.callerP99Ms).toBeGreaterThanOrEqual(19);
    expect(m.stampedeMaxP50Ms).toBeGreaterThanOrEqual(m.fetchMs! * 0.99);
    expect(m.callerMaxMs).toBeLessThan(ranMs);
    // Ours ran its scripts on this server (claims and commits), not on a server of its own.
    expect(await calls(redis, 'evalsha')).toBeGreaterThan(evalsBefore);
    const b = json.compare.bentocache!;
    expect(b, 'compare.bentocache').toBeDefined();
    numbers(b, ['fetches', 'callerP50Ms', 'callerP99Ms']);
    expect(b.fetches).toBeGreaterThanOrEqual(1);
    expect(b.failures).toBe(0);
    // The same bounds: the callers of a process whose factory ran waited for it.
    expect(b.callerP99Ms).toBeGreaterThanOrEqual(19);
    expect(b.callerMaxMs).toBeLessThan(ranMs);
    // bentocache's L2 wrote its value to this server.
    expect(await redis.cli('--scan', '--pattern', 'bench-stampede-*-bento*')).not.toBe('');
  });

  it('read: the hit names measured on a store on Redis, with the mesh hit beside it; the hits sent no command to Redis', { timeout: 120_000 }, async () => {
    const { json } = await run(['read', '--backend', 'redis', '--redis', redis.url, '--duration', '0.5']);
    const m = json.metrics;
    numbers(m, ['hitNs', 'keyedHitNs', 'mapGetNs', 'lruGetNs', 'awaitFloorNs', 'awaitFloorBeforeStoreNs', 'meshHitNs', 'meshKeyedHitNs', 'hitVsMeshHit']);
    expect(m.redisReads).toBeGreaterThan(1000);
    // A hit never touches Redis: at most the replica registration's renewals ran meanwhile.
    expect(m.redisCommandsDuringReads).toBeLessThan(m.redisReads! / 1000);
  });

  it('replication: fetch end to readable on every process, and a raw PING round trip to that Redis in the same run', { timeout: 120_000 }, async () => {
    const pingsBefore = await calls(redis, 'ping');
    const { json, ranMs } = await run(['replication', '--backend', 'redis', '--redis', redis.url, '--nodes', '2', '--duration', '1']);
    const m = json.metrics;
    numbers(m, ['replicationP50Us', 'replicationP99Us', 'meshRttP50Us', 'redisRttP50Us', 'redisIdleRttP50Us', 'meshReplicationP50Us']);
    expect(m.refreshes).toBeGreaterThan(0);
    // The store on the mesh took turns with it in the same processes.
    expect(m.meshRefreshes).toBeGreaterThan(0);
    // A new value reaches the other process through Redis: more than the 1 µs a time is
    // raised to when it reads 0 or less (readable before it was fetched: clocks or values
    // mixed up), and less than the run.
    expect(m.replicationP50Us).toBeGreaterThan(1);
    expect(m.replicationP99Us).toBeLessThan(ranMs * 1000);
    expect(m.redisRttP50Us).toBeGreaterThan(0);
    expect(m.redisIdleRttP50Us).toBeGreaterThan(0);
    // The PING loops ran against this server, once per round trip measured.
    expect((await calls(redis, 'ping')) - pingsBefore).toBeGreaterThan(100);
  });
});
