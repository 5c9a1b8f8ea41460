// The bench cluster helper (bench/lib/cluster.ts) on real forked node processes: the names it
// gives, a full mesh when it resolves, a cookie and seed a later node joins with, and no
// process left behind when a node fails to start.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startCluster } from '../bench/lib/cluster.js';
import { BenchChild, killAll } from '../bench/lib/procs.js';

const PEER = fileURLToPath(new URL('../bench/peers/mesh-peer.ts', import.meta.url));

/** Pids of this process's live children whose command line names `script`. */
function childrenRunning(script: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(script)) out.push(Number(entry));
    } catch {
      // gone while read
    }
  }
  return out;
}

describe('startCluster', () => {
  it('names the nodes <prefix>-1.., connects them all, and hands back the cookie and seed a later node joins with', { timeout: 90_000 }, async () => {
    const children: (BenchChild | undefined)[] = [];
    try {
      const cluster = await startCluster(PEER, 3, 'bench-cluster');
      children.push(...cluster.children);
      expect(cluster.children).toHaveLength(3);
      expect(cluster.names).toEqual(['bench-cluster-1', 'bench-cluster-2', 'bench-cluster-3']);
      // Resolved: every node already sees the two others.
      const seen = await Promise.all(cluster.children.map((c) => c.request<string[]>('waitPeers', { n: 2 }, 5_000)));
      seen.forEach((peers, i) => expect([...peers].sort()).toEqual(cluster.names.filter((_, k) => k !== i)));

      const joiner = await BenchChild.start(PEER);
      children.push(joiner);
      await joiner.request('startNode', { name: 'bench-cluster-late', port: 0, cookie: cluster.cookie, seeds: [cluster.seed] });
      const peers = await joiner.request<string[]>('waitPeers', { n: 3 });
      expect([...peers].sort()).toEqual(cluster.names);
    } finally {
      await killAll(children);
    }
  });

  it('takes a function for names other than <prefix>-<n>', { timeout: 60_000 }, async () => {
    let children: BenchChild[] = [];
    try {
      const cluster = await startCluster(PEER, 2, (i) => ['bench-a', 'bench-b'][i]!);
      children = cluster.children;
      expect(cluster.names).toEqual(['bench-a', 'bench-b']);
      expect(await children[0]!.request<string[]>('waitPeers', { n: 1 }, 5_000)).toEqual(['bench-b']);
    } finally {
      await killAll(children);
    }
  });

  it('kills the children it started when a node fails to start, and rejects with the cause', { timeout: 60_000 }, async () => {
    expect(childrenRunning(PEER)).toEqual([]);
    const err = await startCluster(PEER, 3, (i) => (i === 1 ? 'not a valid name' : `bench-fail-${i}`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/InvalidOptionError.*name/s);
    expect(childrenRunning(PEER)).toEqual([]);
  });
});
