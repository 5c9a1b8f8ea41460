// A redis-server for benchmarks that compare against Redis-based tools: the one given with
// `--redis <url>`, or one started here on a free loopback port (no persistence), killed at
// the end with the bench's other processes.
import { spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { tempDir, trackProcess } from './procs.js';
import { BenchUsageError, type OptionSpec } from './types.js';

/** True when `redis-server` is on the PATH. */
export function hasRedisServer(): boolean {
  return spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status === 0;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    sock.setTimeout(500, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(false));
    sock.once('data', (d) => {
      sock.end();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.write('PING\r\n');
  });
}

export interface BenchRedis {
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts a redis-server on a free port; resolves once it answers PING. */
export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const dir = tempDir('bench-redis-');
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path], { stdio: 'ignore' });
  trackProcess(proc);
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
    dir.remove();
  };
  const until = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (proc.exitCode !== null || Date.now() > until) {
      await stop();
      throw new Error(`redis-server on port ${port} did not start`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}

/** The `--backend` and `--redis` options of the benches that run the store on either backend. */
export const BACKEND_OPTIONS = {
  backend: { type: 'string', choices: ['mesh', 'redis'], default: 'mesh', description: 'where cluster-scope expirables coordinate: our mesh, or one Redis (redisBackend)' },
  redis: { type: 'string', arg: 'url', description: 'with --backend redis: the Redis to use (default: a redis-server started for the run)' },
} as const satisfies Record<string, OptionSpec>;

/** Checks `--backend` / `--redis` together (throws BenchUsageError); returns them. */
export function backendParams(v: Record<string, unknown>): { backend: string; redis: string } {
  const backend = String(v.backend ?? 'mesh');
  const redis = (v.redis as string | undefined) ?? '';
  if (redis !== '' && backend !== 'redis') throw new BenchUsageError('--redis applies with --backend redis only');
  if (redis !== '' && !/^rediss?:\/\/[^/]/.test(redis)) throw new BenchUsageError(`--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(redis)}`);
  return { backend, redis };
}

/** Why `--backend redis` cannot run here, or undefined. */
export function redisUnavailable(p: { backend: string; redis: string }): string | undefined {
  if (p.backend !== 'redis' || p.redis !== '' || hasRedisServer()) return undefined;
  return '--backend redis needs `redis-server` on the PATH (apt-get install redis-server) or --redis <url>';
}

/** Runs `fn` with the Redis URL of `--redis`, or of a redis-server started for it and stopped after. */
export async function withBenchRedis<T>(url: string, fn: (url: string) => Promise<T>): Promise<T> {
  if (url !== '') return fn(url);
  const server = await startBenchRedis();
  try {
    return await fn(server.url);
  } finally {
    await server.stop();
  }
}
