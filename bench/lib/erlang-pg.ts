// `pg --compare erlang`: the pg workload on Erlang's `pg` (bench/erlang/pg_bench.erl) on a
// cluster of BEAM nodes, when `erl` is on the PATH, started by `startBeamCluster` (./erlang.ts:
// a private epmd on a free port, loopback only). The last node is killed with SIGKILL here (as
// ours is) when the main node prints the line `ready`, and every process started here is
// killed at the end. The Erlang side bounds each of its waits and exits non-zero, saying
// which, rather than hang; its output is in the error.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBeamCluster } from './erlang.js';
import { newHistogram } from './stats.js';

const ERL_SOURCE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'erlang', 'pg_bench.erl');

export interface PgFigures {
  joinVisibleP50Us: number;
  joinVisibleP99Us: number;
  meshRttP50Us: number;
  downCleanupMs: number;
  killToNodedownMs: number;
  downCleanupFromNodedownMs: number;
  joins: number;
}

/** Wall-clock microseconds, the clock the Erlang side reads with os:system_time(microsecond). */
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

/** Runs the pg workload on `nodes` BEAM nodes for `durationMs` of joins. */
export async function runErlangPg(nodes: number, durationMs: number, members: number): Promise<PgFigures> {
  const cluster = await startBeamCluster({ source: ERL_SOURCE, nodes, prefix: 'pb', erlFlags: ['-kernel', 'start_pg', 'true'] });
  try {
    const victim = cluster.peers.at(-1)!;
    const out = join(cluster.dir, 'result.txt');
    let killedAt = NaN;
    const main = cluster.startMain('pg_bench', [cluster.names.slice(1).join(','), String(Math.round(durationMs)), String(members), out], {
      limitMs: durationMs * 2 + 60_000,
      onLine: (line) => {
        if (line === 'ready' && Number.isNaN(killedAt)) {
          killedAt = nowUs();
          victim.kill('SIGKILL');
        }
      },
    });
    const code = await main.exited;
    if (code !== 0) throw new Error(`the Erlang pg bench failed (exit ${code}):\n${cluster.output().slice(-4000)}`);
    return parse(readFileSync(out, 'utf8'), killedAt);
  } finally {
    cluster.stop();
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
  const lastDown = down.length > 0 && down.every((d) => d > 0) ? Math.max(...down) : NaN;
  const fromDown = gone.map((g, i) => (down[i]! > 0 ? g - down[i]! : NaN));
  return {
    joinVisibleP50Us: joins.totalCount ? joins.getValueAtPercentile(50) : NaN,
    joinVisibleP99Us: joins.totalCount ? joins.getValueAtPercentile(99) : NaN,
    meshRttP50Us: rtt.totalCount ? rtt.getValueAtPercentile(50) : NaN,
    downCleanupMs: (lastGone - killedAt) / 1000,
    killToNodedownMs: (lastDown - killedAt) / 1000,
    downCleanupFromNodedownMs: fromDown.length > 0 ? Math.max(...fromDown) / 1000 : NaN,
    joins: joins.totalCount,
  };
}
