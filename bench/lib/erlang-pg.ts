// `pg --compare erlang`: the pg workload on Erlang's `pg` (bench/erlang/pg_bench.erl) on a
// cluster of BEAM nodes, when `erl` is on the PATH. A private epmd on a free port, loopback
// only; the last node is killed with SIGKILL here (as ours is), and every process started
// here is killed at the end.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from './erlang.js';
import { tempDir, trackProcess } from './procs.js';
import { newHistogram } from './stats.js';

const ERL_SOURCE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'erlang', 'pg_bench.erl');

export interface PgFigures {
  joinVisibleP50Us: number;
  joinVisibleP99Us: number;
  meshRttP50Us: number;
  downCleanupMs: number;
  downCleanupFromNodedownMs: number;
  joins: number;
}

/** Wall-clock microseconds, the clock the Erlang side reads with os:system_time(microsecond). */
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

/** Runs the pg workload on `nodes` BEAM nodes for `durationMs` of joins. */
export async function runErlangPg(nodes: number, durationMs: number, members: number): Promise<PgFigures> {
  const tmp = tempDir('pg-bench-erl-');
  const dir = tmp.path;
  const procs: ChildProcess[] = [];
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
    const tag = `pb${process.pid}${randomBytes(2).toString('hex')}`;
    const names = Array.from({ length: nodes }, (_, i) => `${tag}_${i + 1}@127.0.0.1`);
    const erlArgs = (name: string): string[] => [
      '-noshell', '-name', name, '-setcookie', cookie, '-start_epmd', 'false', '-pa', dir,
      '-kernel', 'inet_dist_use_interface', '{127,0,0,1}', '-kernel', 'start_pg', 'true',
    ];
    let output = '';
    const peers: ChildProcess[] = [];
    for (const name of names.slice(1)) {
      const p = spawn('erl', erlArgs(name), { stdio: ['ignore', 'ignore', 'pipe'], env });
      p.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      procs.push(p);
      peers.push(p);
      trackProcess(p);
    }
    const victim = peers.at(-1)!;
    const out = join(dir, 'result.txt');
    const main = spawn('erl', [...erlArgs(names[0]!), '-run', 'pg_bench', 'main', names.slice(1).join(','), String(Math.round(durationMs)), String(members), out], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    procs.push(main);
    trackProcess(main);
    let killedAt = NaN;
    main.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      if (Number.isNaN(killedAt) && output.includes('ready')) {
        killedAt = nowUs();
        victim.kill('SIGKILL');
      }
    });
    main.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    // A BEAM that hangs (a node that cannot connect) fails the bench instead of hanging it.
    const limitMs = durationMs * 2 + 60_000;
    let timer: NodeJS.Timeout | undefined;
    const code = await new Promise<number | null>((r) => {
      timer = setTimeout(() => {
        output += `\nno result after ${limitMs} ms\n`;
        main.kill('SIGKILL');
      }, limitMs);
      main.once('exit', (x) => r(x));
    }).finally(() => clearTimeout(timer));
    if (code !== 0) throw new Error(`the Erlang pg bench failed (exit ${code}):\n${output.slice(-4000)}`);
    return parse(readFileSync(out, 'utf8'), killedAt);
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    tmp.remove();
  }
}

function parse(text: string, killedAt: number): PgFigures {
  const rtt = newHistogram();
  const joins = newHistogram();
  const gone: number[] = [];
  const down: number[] = [];
  for (const line of text.split('\n')) {
    const [key, v] = line.trim().split(' ');
    if (key === 'rtt') rtt.recordValue(Math.max(1, Number(v)));
    else if (key === 'join') joins.recordValue(Math.max(1, Number(v)));
    else if (key === 'gone') gone.push(Number(v));
    else if (key === 'down') down.push(Number(v));
  }
  const lastGone = gone.length > 0 && gone.every((g) => g > 0) ? Math.max(...gone) : NaN;
  const fromDown = gone.map((g, i) => (down[i]! > 0 ? g - down[i]! : NaN));
  return {
    joinVisibleP50Us: joins.totalCount ? joins.getValueAtPercentile(50) : NaN,
    joinVisibleP99Us: joins.totalCount ? joins.getValueAtPercentile(99) : NaN,
    meshRttP50Us: rtt.totalCount ? rtt.getValueAtPercentile(50) : NaN,
    downCleanupMs: (lastGone - killedAt) / 1000,
    downCleanupFromNodedownMs: fromDown.length > 0 ? Math.max(...fromDown) / 1000 : NaN,
    joins: joins.totalCount,
  };
}
