// A node process of the pg benchmark (forked by bench/pg.ts, driven over IPC): a cluster
// node that watches the group `bench` with `node.pg.monitor` and records when each member
// appeared and left. Times compared across processes are wall-clock microseconds read as
// `performance.timeOrigin + performance.now()`, one clock for every process of the host.
import { startNode, type ActorRef, type Node, type NodeOptions } from '../../src/index.js';
import { serve } from '../lib/child.js';
import { timedLoop } from '../lib/raw.js';
import type { ActorRefData } from '../../src/actors/ref.js';

const GROUP = 'bench';
let node: Node | undefined;
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;
const keyOf = (r: { node: string; id: unknown }): string => `${r.node}/${String(r.id)}`;

/** When each member (node/id) was first seen joining here. */
const seen = new Map<string, number>();
const waiters = new Map<string, (at: number) => void>();
/** When this node heard `nodedown` for a node. */
const downAt = new Map<string, number>();
/** Waiters for "no member of node X left in the group". */
const goneWaiters: { node: string; resolve: (at: number) => void }[] = [];

function checkGone(): void {
  const members = node!.pg.getMembers(GROUP);
  for (let i = goneWaiters.length - 1; i >= 0; i--) {
    const w = goneWaiters[i]!;
    if (!members.some((m) => m.node === w.node)) {
      goneWaiters.splice(i, 1);
      w.resolve(nowUs());
    }
  }
}

serve({
  async startNode(options: NodeOptions): Promise<{ name: string; address: string | undefined }> {
    node = await startNode(options);
    node.on('nodedown', (name: string) => {
      if (!downAt.has(name)) downAt.set(name, nowUs());
    });
    node.pg.monitor(GROUP, (e: { type: 'join' | 'leave'; refs: ActorRef[] }) => {
      const at = nowUs();
      if (e.type === 'join') {
        for (const r of e.refs) {
          const k = keyOf(r);
          if (!seen.has(k)) seen.set(k, at);
          waiters.get(k)?.(at);
          waiters.delete(k);
        }
      } else {
        checkGone();
      }
    });
    return { name: node.name, address: node.address };
  },
  async waitPeers({ n }: { n: number }): Promise<string[]> {
    const n0 = node!;
    while (n0.nodes().length < n) await new Promise<void>((r) => n0.once('nodeup', () => r()));
    return n0.nodes();
  },
  spawnEcho(): ActorRefData {
    const ref = node!.spawn({ init: () => null, handleCall: (msg: unknown, state: null) => ({ reply: msg, state }) });
    return { node: ref.node, id: ref.id };
  },
  callLoop({ ref, durationMs }: { ref: ActorRefData; durationMs: number }) {
    const r = node!.ref(ref);
    return timedLoop(() => r.call({ add: 2 }), durationMs);
  },
  /** Spawns an actor and joins it to the group; the time of the `join` call (µs) and its key. */
  join(): { key: string; at: number } {
    const ref = node!.spawn({ init: () => null, handleCall: (msg: unknown, state: null) => ({ reply: msg, state }) });
    const at = nowUs();
    node!.pg.join(GROUP, ref);
    return { key: keyOf(ref), at };
  },
  /** Resolves with the time (µs) this node's monitor saw member `key` join. */
  waitSeen({ key }: { key: string }): Promise<number> {
    const at = seen.get(key);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => waiters.set(key, resolve));
  },
  /** Members of the group on node `name`, as this node sees them. */
  countOf({ name }: { name: string }): number {
    return node!.pg.getMembers(GROUP).filter((m) => m.node === name).length;
  },
  /** Resolves when no member of node `name` is left in this node's view: that time and when `nodedown` came (µs). */
  waitGone({ name }: { name: string }): Promise<{ goneAt: number; downAt: number | undefined }> {
    return new Promise<number>((resolve) => {
      goneWaiters.push({ node: name, resolve });
      checkGone();
    })
      .then(async (goneAt) => {
        await new Promise((r) => setImmediate(r)); // a `nodedown` listener registered after pg's own runs after it
        return goneAt;
      })
      .then((goneAt) => ({ goneAt, downAt: downAt.get(name) }));
  },
  async close(): Promise<null> {
    await node?.close();
    return null;
  },
});
