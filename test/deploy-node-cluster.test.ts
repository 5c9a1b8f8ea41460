// node:cluster embedding with real cluster workers: a primary and its workers form one
// cluster with nothing configured by hand, and a worker killed with kill -9 and forked again
// by the primary rejoins under its name (nodedown, then nodeup, on every other node).
import { afterEach, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const APP = fileURLToPath(new URL('./fixtures/cluster-app.ts', import.meta.url));

interface Line {
  ev: string;
  role: 'primary' | 'worker';
  pid: number;
  self?: string;
  name?: string;
  reason?: string;
  nodes?: string[];
}

let primary: ChildProcess | undefined;
const pids = new Set<number>();
afterEach(() => {
  // The primary first (it would fork again), then every worker it told us of.
  primary?.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
});

function run(workers: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', APP], { env: { ...process.env, WORKERS: String(workers) }, stdio: ['ignore', 'pipe', 'pipe'] });
  primary = child;
  const lines: Line[] = [];
  let waiters: { match: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  let buf = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as Line;
      pids.add(line.pid);
      lines.push(line);
      const hit = waiters.filter((w) => w.match(line));
      waiters = waiters.filter((w) => !hit.includes(w));
      for (const w of hit) w.resolve(line);
    }
  });
  const wait = (match: (l: Line) => boolean, what: string, timeout = 30_000): Promise<Line> => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { match, resolve: (l: Line) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        waiters = waiters.filter((x) => x !== w);
        reject(new Error(`no ${what}; lines: ${JSON.stringify(lines)}; stderr: ${err.slice(-2000)}`));
      }, timeout);
      waiters.push(w);
    });
  };
  return { lines, wait };
}

test('a primary and its workers form one cluster; a worker killed with kill -9 and forked again rejoins under its name', async () => {
  const { lines, wait } = run(2);
  const started = await wait((l) => l.ev === 'started', 'primary start');
  const primaryName = started.self!;
  const w1 = await wait((l) => l.ev === 'ready' && l.self === `${primaryName}-w1`, 'w1 ready');
  const w2 = await wait((l) => l.ev === 'ready' && l.self === `${primaryName}-w2`, 'w2 ready');
  // A full mesh of three: each worker sees the primary and its sibling.
  expect(w1.nodes!.sort()).toEqual([primaryName, `${primaryName}-w2`].sort());
  expect(w2.nodes!.sort()).toEqual([primaryName, `${primaryName}-w1`].sort());
  const mark = lines.length;
  process.kill(w1.pid, 'SIGKILL');
  // The primary forks a new worker, which gets slot 1 again.
  const again = await wait((l) => l.ev === 'ready' && l.self === `${primaryName}-w1` && l.pid !== w1.pid, 'w1 again');
  expect(again.nodes!.sort()).toEqual([primaryName, `${primaryName}-w2`].sort());
  for (const observer of [primaryName, `${primaryName}-w2`]) {
    await wait((l) => lines.indexOf(l) >= mark && l.ev === 'nodeup' && l.self === observer && l.name === `${primaryName}-w1`, `${observer} sees w1 up`);
    const seen = lines.slice(mark).filter((l) => l.self === observer && l.name === `${primaryName}-w1`).map((l) => l.ev);
    expect(seen).toEqual(['nodedown', 'nodeup']);
  }
});
