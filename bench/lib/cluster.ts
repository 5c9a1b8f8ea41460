// A cluster of bench children (procs.ts) whose scripts offer the `startNode` and `waitPeers`
// requests (node-handlers.ts): one random cookie, the first node started alone, the others
// seeded with its address, then every node waits until it is connected to all the others.
// The bench keeps the children and kills them in its own `finally`; when a start fails here,
// before the bench holds them, they are killed here.
import { randomBytes } from 'node:crypto';
import { killAll, startChildren, type BenchChild, type ChildOptions } from './procs.js';

export interface ClusterOptions extends ChildOptions {
  /** Milliseconds each node may take to see all the others (its `waitPeers` request). @default 60000 */
  peersTimeout?: number;
}

export interface BenchCluster {
  /** The node processes, in the order of their names. */
  children: BenchChild[];
  /** The names the nodes report, in order. */
  names: string[];
  /** The cluster's cookie, for a node that joins later. */
  cookie: string;
  /** The first node's address, the seed of every other node (and of a node that joins later). */
  seed: string;
}

/**
 * Forks `count` children of `script` and makes one mesh of their nodes. A string `name` is a
 * prefix: the nodes are `<name>-1`, `<name>-2`, …; a function gets the 0-based index.
 */
export async function startCluster(script: string, count: number, name: string | ((index: number) => string), options: ClusterOptions = {}): Promise<BenchCluster> {
  const { peersTimeout, ...childOptions } = options;
  const nameOf = typeof name === 'string' ? (i: number): string => `${name}-${i + 1}` : name;
  const children = await startChildren(script, count, childOptions);
  try {
    const cookie = randomBytes(12).toString('hex');
    const start = (c: BenchChild, i: number, seeds?: string[]): Promise<{ name: string; address: string }> =>
      c.request('startNode', { name: nameOf(i), port: 0, cookie, ...(seeds ? { seeds } : {}) });
    const first = await start(children[0]!, 0);
    const rest = await Promise.all(children.slice(1).map((c, i) => start(c, i + 1, [first.address])));
    await Promise.all(children.map((c) => c.request('waitPeers', { n: count - 1 }, peersTimeout)));
    return { children, names: [first.name, ...rest.map((r) => r.name)], cookie, seed: first.address };
  } catch (err) {
    await killAll(children);
    throw err;
  }
}
