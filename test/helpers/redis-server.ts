// Real redis-server processes for the Redis backend's tests.
//
// Usage:
//   import { hasRedis, startRedis, startRedisCluster } from './helpers/redis-server.js';
//
//   describe.skipIf(!hasRedis)('…', () => {
//     let redis: RedisServer;
//     beforeAll(async () => (redis = await startRedis()));   // free port, no persistence
//     afterAll(() => redis.stop());                         // killed by pid
//     redis.url;  redis.pause();  redis.resume();  await redis.restart();  // same port, keys lost
//     await redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
//   });
//
//   const cluster = await startRedisCluster();  // 3 masters, slots assigned, state ok
//   cluster.url;  await cluster.stop();
//
// When redis-server is not installed, `hasRedis` is false and one line says how to install it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

const which = (cmd: string): string | undefined => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
};

export const REDIS_SERVER = which('redis-server');
export const REDIS_CLI = which('redis-cli');
export const hasRedis = REDIS_SERVER !== undefined && REDIS_CLI !== undefined;
if (!hasRedis) console.log('Redis tests skipped: redis-server/redis-cli not found (install them with `apt-get install redis-server`).');

/** Every server started by this test process, killed when it exits. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) {
    p.kill('SIGCONT');
    p.kill('SIGKILL');
  }
});

export { freePort };

/** Sends one inline command; resolves with the raw reply. */
export function rawCommand(port: number, line: string, timeout = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no reply from port ${port} in ${timeout} ms`));
    }, timeout);
    sock.on('data', (d) => {
      out += d.toString();
      if (out.endsWith('\r\n')) {
        clearTimeout(timer);
        // Resolved once the server has closed its side too: it has let go of this client, so
        // a count of the server's clients taken next does not see it.
        sock.once('close', () => resolve(out));
        sock.end();
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.write(`${line}\r\n`);
  });
}

async function waitUntilAnswers(port: number, proc: ChildProcess, timeout = 10_000): Promise<void> {
  const until = Date.now() + timeout;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`redis-server on port ${port} exited (${proc.exitCode})`);
    try {
      if ((await rawCommand(port, 'PING', 500)).startsWith('+PONG')) {
        // The one answering must be ours: another test file's server may have taken the port
        // between its check and our bind (ours then exits, theirs answers the PING).
        const info = await rawCommand(port, 'INFO server', 1000).catch(() => '');
        if (info.includes(`process_id:${proc.pid}\r\n`)) return;
        if (proc.exitCode !== null || info.includes('process_id:')) throw new Error(`port ${port} is taken by another redis-server`);
      }
    } catch (err) {
      if (err instanceof Error && err.message.includes('taken by another')) throw err;
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer in ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface RedisServerOptions {
  /** Extra arguments for redis-server. */
  args?: string[];
  /** Port (default: a free one). */
  port?: number;
}

export class RedisServer {
  #proc: ChildProcess | undefined = undefined;
  readonly dir: string;

  constructor(
    readonly port: number,
    readonly args: string[],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'es-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Starts the server (no persistence: a restart loses every key) and waits until it answers. */
  async start(): Promise<void> {
    const proc = spawn(REDIS_SERVER!, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.args], {
      stdio: 'ignore',
    });
    this.#proc = proc;
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    await waitUntilAnswers(this.port, proc);
  }

  /** SIGSTOP: the server keeps its sockets open and answers nothing. */
  pause(): void {
    this.#proc?.kill('SIGSTOP');
  }

  /** SIGCONT after `pause`. */
  resume(): void {
    this.#proc?.kill('SIGCONT');
  }

  /** Kills the server by pid (kill -9) and waits until it has exited. */
  async kill(): Promise<void> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
    await exited;
  }

  /** Kills the server and starts it again on the same port, empty. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Runs redis-cli against this server; resolves with its output. */
  cli(...args: string[]): Promise<string> {
    return runCli(['-p', String(this.port), ...args]);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function runCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(REDIS_CLI!, ['-h', '127.0.0.1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d.toString()));
    p.stderr.on('data', (d) => (out += d.toString()));
    p.once('error', reject);
    // 'close', not 'exit': the process can exit before its output has been read (an empty answer).
    p.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')} exited ${code}: ${out}`))));
  });
}

/** Starts one redis-server on a free port. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  for (let attempt = 0; ; attempt++) {
    const server = new RedisServer(options.port ?? (await freePort()), options.args ?? []);
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.stop();
      // The free port was taken between its check and the server's bind: try another.
      if (options.port !== undefined || attempt >= 3) throw err;
    }
  }
}

export class RedisClusterFixture {
  constructor(readonly servers: RedisServer[]) {}

  /** The URL of one node (the client discovers the others). */
  get url(): string {
    return this.servers[0]!.url;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

/**
 * Starts a local Redis Cluster of `masters` masters (no replicas) on free ports, assigns
 * the slots with `redis-cli --cluster create`, and waits until every node says the
 * cluster is ok.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterFixture> {
  const servers: RedisServer[] = [];
  const fixture = new RedisClusterFixture(servers);
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
    }
    await runCli(['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    const until = Date.now() + 20_000;
    for (const s of servers) {
      for (;;) {
        const info = await s.cli('CLUSTER', 'INFO');
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > until) throw new Error(`cluster node ${s.port} not ok: ${info}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await fixture.stop();
    throw err;
  }
  return fixture;
}
