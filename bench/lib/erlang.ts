// `--compare erlang`: runs the lock workload against Erlang's :global.trans on a cluster of
// BEAM nodes (bench/erlang/lock_bench.erl), when `erl` is on the PATH; and `startBeamCluster`,
// shared with the pg comparison (./erlang-pg.ts): the module compiled once into a temporary
// directory, a private epmd on a free port, loopback only. Every process started here is
// killed at the end, so nothing is left running.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { tempDir, trackProcess } from './procs.js';
import { lockFigures, progressTicker, type LockFigures, type LockWorkload } from './lock-workload.js';
import { newHistogram } from './stats.js';

const LOCK_SOURCE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'erlang', 'lock_bench.erl');

/** True when `erl`, `erlc` and `epmd` are on the PATH. */
export function hasErlang(): boolean {
  return ['erl', 'erlc', 'epmd'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0);
}

export interface ErlangLockFigures extends LockFigures {
  /** Contenders that did not report back in time (stuck in global:trans). */
  missing: number;
  counts: number[];
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Runs the workload on `w.nodes` BEAM nodes; `onTick` gets the fraction of time elapsed. */
export async function runErlangLock(w: LockWorkload, onTick?: (f: number) => void): Promise<ErlangLockFigures> {
  const cluster = await startBeamCluster({ source: LOCK_SOURCE, nodes: w.nodes, prefix: 'lb' });
  let stopTicker: (() => void) | undefined;
  try {
    const out = join(cluster.dir, 'result.txt');
    const main = cluster.startMain('lock_bench', [
      cluster.names.slice(1).join(','),
      String(w.contenders), String(w.resources), String(w.holdMs), String(w.warmupMs), String(w.durationMs), w.file, out,
    ]);
    if (onTick) stopTicker = progressTicker(w, onTick);
    const code = await main.exited;
    if (code !== 0) throw new Error(`the Erlang lock bench failed (exit ${code}):\n${cluster.output().slice(-4000)}`);
    return parseResult(readFileSync(out, 'utf8'), w.durationMs);
  } finally {
    stopTicker?.();
    cluster.stop();
  }
}

/** A cluster of BEAM nodes on loopback, started by `startBeamCluster`. */
export interface BeamCluster {
  /** The temporary directory holding the compiled module (and the results the bench writes). */
  readonly dir: string;
  /** Node names, `<prefix><pid><rand>_<i>@127.0.0.1`; the first is the main node's. */
  readonly names: string[];
  /** The peers (every node but the first), already started, in `names` order. */
  readonly peers: ChildProcess[];
  /**
   * Starts the first node running `module:main(args)` (`-run`); `exited` resolves with its
   * exit code, or null when it was killed (by `limitMs`, if given). `onLine` gets each line
   * it prints on stdout.
   */
  startMain(module: string, args: string[], options?: { limitMs?: number; onLine?: (line: string) => void }): { exited: Promise<number | null> };
  /** What every node printed so far (stdout and stderr), for error messages. */
  output(): string;
  /** Kills every process started here and removes the directory. */
  stop(): void;
}

/**
 * Compiles `source` into a temporary directory, starts a private epmd on a free port (loopback
 * only) and `nodes - 1` peer nodes, with one random cookie. Shared by the lock and pg
 * comparisons. Every process is tracked, so it is killed if the bench is interrupted.
 */
export async function startBeamCluster(o: { source: string; nodes: number; prefix: string; erlFlags?: string[] }): Promise<BeamCluster> {
  const tmp = tempDir(`${o.prefix}-bench-erl-`);
  const dir = tmp.path;
  const procs: ChildProcess[] = [];
  let text = '';
  const collect = (p: ChildProcess): void => {
    p.stdout?.on('data', (d: Buffer) => (text = (text + d.toString()).slice(-16_000)));
    p.stderr?.on('data', (d: Buffer) => (text = (text + d.toString()).slice(-16_000)));
  };
  const stop = (): void => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    tmp.remove();
  };
  try {
    const c = spawnSync('erlc', ['-o', dir, o.source], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`erlc failed: ${c.stderr}${c.stdout}`);
    const epmdPort = await freePort();
    const env = { ...process.env, ERL_EPMD_PORT: String(epmdPort) };
    const epmd = spawn('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { stdio: 'ignore', env });
    procs.push(epmd);
    trackProcess(epmd);
    await waitForPort(epmdPort);
    const cookie = randomBytes(12).toString('hex');
    const tag = `${o.prefix}${process.pid}${randomBytes(2).toString('hex')}`;
    const names = Array.from({ length: o.nodes }, (_, i) => `${tag}_${i + 1}@127.0.0.1`);
    const erlArgs = (name: string): string[] => [
      '-noshell', '-name', name, '-setcookie', cookie, '-start_epmd', 'false', '-pa', dir,
      '-kernel', 'inet_dist_use_interface', '{127,0,0,1}', ...(o.erlFlags ?? []),
    ];
    const peers = names.slice(1).map((name) => {
      const p = spawn('erl', erlArgs(name), { stdio: ['ignore', 'pipe', 'pipe'], env });
      collect(p);
      procs.push(p);
      trackProcess(p);
      return p;
    });
    return {
      dir,
      names,
      peers,
      output: () => text,
      stop,
      startMain(module, args, options = {}) {
        const main = spawn('erl', [...erlArgs(names[0]!), '-run', module, 'main', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
        procs.push(main);
        trackProcess(main);
        collect(main);
        let partial = '';
        main.stdout!.on('data', (d: Buffer) => {
          const lines = (partial + d.toString()).split('\n');
          partial = lines.pop()!;
          for (const line of lines) options.onLine?.(line.trim());
        });
        const exited = new Promise<number | null>((resolve) => {
          // A BEAM that hangs fails the bench instead of hanging it.
          const timer =
            options.limitMs === undefined
              ? undefined
              : setTimeout(() => {
                  text += `\nno result after ${options.limitMs} ms\n`;
                  main.kill('SIGKILL');
                }, options.limitMs);
          main.once('exit', (code) => {
            if (timer) clearTimeout(timer);
            resolve(code);
          });
        });
        return { exited };
      },
    };
  } catch (err) {
    stop();
    throw err;
  }
}

function parseResult(text: string, durationMs: number): ErlangLockFigures {
  const h = newHistogram();
  let counts: number[] = [];
  let violations = 0;
  let elapsedUs = durationMs * 1000;
  let missing = 0;
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.trim().split(' ');
    if (key === 'lat') h.recordValue(Math.max(1, Number(rest[0])));
    else if (key === 'counts') counts = rest.filter((x) => x !== '').map(Number);
    else if (key === 'violations') violations = Number(rest[0]);
    else if (key === 'elapsed_us') elapsedUs = Number(rest[0]);
    else if (key === 'missing') missing = Number(rest[0]);
  }
  return { ...lockFigures({ counts, histogram: h, elapsedS: elapsedUs / 1e6, violations }), missing, counts };
}

export async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`epmd did not listen on ${port}`);
}
