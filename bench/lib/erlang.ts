// `--compare erlang`: runs the lock workload against Erlang's :global.trans on a cluster of
// BEAM nodes (bench/erlang/lock_bench.erl), when `erl` is on the PATH. Everything runs on
// loopback with a private epmd on a free port; every process started here is killed at the
// end, so nothing is left running.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { tempDir, trackProcess } from './procs.js';
import { jain, newHistogram } from './stats.js';

const ERL_SOURCE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'erlang', 'lock_bench.erl');

/** True when `erl`, `erlc` and `epmd` are on the PATH. */
export function hasErlang(): boolean {
  return ['erl', 'erlc', 'epmd'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0);
}

export interface LockWorkload {
  nodes: number;
  contenders: number;
  resources: number;
  holdMs: number;
  warmupMs: number;
  durationMs: number;
  /** The shared invariant file (resources x 16 zero bytes). */
  file: string;
}

export interface ErlangLockFigures {
  grantsPerSec: number;
  jain: number;
  acquireP50Us: number;
  acquireP99Us: number;
  acquireMaxUs: number;
  violations: number;
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
  const tmp = tempDir('lock-bench-erl-');
  const dir = tmp.path;
  const procs: ChildProcess[] = [];
  let ticker: NodeJS.Timeout | undefined;
  try {
    const c = spawnSync('erlc', ['-o', dir, ERL_SOURCE], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`erlc failed: ${c.stderr}${c.stdout}`);
    const epmdPort = await freePort();
    const env = { ...process.env, ERL_EPMD_PORT: String(epmdPort) };
    const epmd = spawn('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { stdio: 'ignore', env });
    procs.push(epmd);
    trackProcess(epmd);
    await waitForPort(epmdPort);
    const cookie = randomBytes(12).toString('hex');
    const tag = `lb${process.pid}${randomBytes(2).toString('hex')}`;
    const names = Array.from({ length: w.nodes }, (_, i) => `${tag}_${i + 1}@127.0.0.1`);
    const erlArgs = (name: string): string[] => [
      '-noshell', '-name', name, '-setcookie', cookie, '-start_epmd', 'false', '-pa', dir,
      '-kernel', 'inet_dist_use_interface', '{127,0,0,1}',
    ];
    let output = '';
    for (const name of names.slice(1)) {
      const p = spawn('erl', erlArgs(name), { stdio: ['ignore', 'ignore', 'pipe'], env });
      p.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      procs.push(p);
      trackProcess(p);
    }
    const out = join(dir, 'result.txt');
    const main = spawn(
      'erl',
      [
        ...erlArgs(names[0]!), '-run', 'lock_bench', 'main', names.slice(1).join(','),
        String(w.contenders), String(w.resources), String(w.holdMs), String(w.warmupMs), String(w.durationMs), w.file, out,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env },
    );
    procs.push(main);
    trackProcess(main);
    main.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    main.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const started = Date.now();
    const total = w.warmupMs + w.durationMs;
    ticker = setInterval(() => onTick?.(Math.min(1, (Date.now() - started) / total)), 200);
    const code = await new Promise<number | null>((r) => main.once('exit', (c) => r(c)));
    if (code !== 0) throw new Error(`the Erlang lock bench failed (exit ${code}):\n${output.slice(-4000)}`);
    return parseResult(readFileSync(out, 'utf8'), w.durationMs);
  } finally {
    if (ticker) clearInterval(ticker);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    tmp.remove();
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
  const grants = counts.reduce((a, b) => a + b, 0);
  return {
    grantsPerSec: grants / (elapsedUs / 1e6),
    jain: jain(counts),
    acquireP50Us: h.totalCount ? h.getValueAtPercentile(50) : NaN,
    acquireP99Us: h.totalCount ? h.getValueAtPercentile(99) : NaN,
    acquireMaxUs: h.totalCount ? h.maxValue : NaN,
    violations,
    missing,
    counts,
  };
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
