// A node process of the pg benchmark (forked by bench/pg.ts, driven over IPC): a cluster
// node that watches the group `bench` with `node.pg.monitor` and records when each member
// appeared and left, plus plain TCP sockets to the other node processes for the floor (a
// 4-byte frame written to every other process, nothing of ours on the path). Times compared
// across processes are wall-clock microseconds read as `performance.timeOrigin +
// performance.now()`, one clock for every process of the host.
//
// The answer to `join` and `rawSend` goes back to the bench process after the turn in which
// the frames were written (setImmediate): the bench's own message must not leave ahead of
// the frames it measures, nor wake the bench process before the other nodes.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { EventEmitter } from 'node:events';
import type { ActorRef, Node } from '../../src/index.js';
import { serve } from '../lib/child.js';
import { nodeHandlers } from '../lib/node-handlers.js';
import { echoHandlers } from '../lib/echo-handlers.js';

const GROUP = 'bench';
let node: Node | undefined;
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;
const keyOf = (r: { node: string; id: unknown }): string => `${r.node}/${String(r.id)}`;
const afterThisTurn = <T>(value: T): Promise<T> => new Promise((resolve) => setImmediate(() => resolve(value)));

/** When each member (node/id) was first seen joining here. */
const seen = new Map<string, number>();
const waiters = new Map<string, (at: number) => void>();
/** When this node's mesh reported `nodedown` for a node (before pg's own listener ran). */
const downAt = new Map<string, number>();
/** Waiters for "no member of node X left in the group". */
const goneWaiters: { node: string; resolve: (at: number) => void }[] = [];

/** The floor: plain sockets to the other node processes, and when each raw frame arrived. */
let rawServer: Server | undefined;
const rawOut: Socket[] = [];
const rawSeen = new Map<number, number>();
const rawWaiters = new Map<number, (at: number) => void>();
/** When the first raw socket closed: the killed node's, the kernel's own moment (µs). */
let rawClosedAt: number | undefined;
const onRawClose = (): void => {
  rawClosedAt ??= nowUs();
};

function onRawSocket(socket: Socket): void {
  socket.setNoDelay(true);
  let rest: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    const at = nowUs();
    const buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let pos = 0;
    for (; pos + 4 <= buf.length; pos += 4) {
      const k = buf.readUInt32BE(pos);
      rawSeen.set(k, at);
      rawWaiters.get(k)?.(at);
      rawWaiters.delete(k);
    }
    rest = buf.subarray(pos);
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', onRawClose);
}

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

/** Watches `n`: when the mesh handles a nodedown, and every join and leave of GROUP. */
function watch(n: Node): void {
  // The mesh's own event, ahead of every listener (pg's included): the moment this process
  // handled the socket's close.
  (n.membership as unknown as EventEmitter).prependListener('nodedown', (name: string) => {
    if (!downAt.has(name)) downAt.set(name, nowUs());
  });
  n.pg.monitor(GROUP, (e: { type: 'join' | 'leave'; refs: ActorRef[] }) => {
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
}

serve({
  ...nodeHandlers(
    (n) => {
      node = n;
      watch(n);
    },
    () => node,
  ),
  async rawListen(): Promise<number> {
    rawServer = createServer(onRawSocket);
    await new Promise<void>((r) => rawServer!.listen(0, '127.0.0.1', r));
    return (rawServer.address() as { port: number }).port;
  },
  async rawConnect({ ports }: { ports: number[] }): Promise<null> {
    for (const port of ports) {
      const s = connect({ port, host: '127.0.0.1', noDelay: true });
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('error', reject);
      });
      s.on('error', () => s.destroy());
      s.on('close', onRawClose);
      rawOut.push(s);
    }
    return null;
  },
  /** Writes raw frame `k` to every other node process; the time of the write (µs). */
  rawSend({ k }: { k: number }): Promise<number> {
    const frame = Buffer.alloc(4);
    frame.writeUInt32BE(k >>> 0);
    const at = nowUs();
    for (const s of rawOut) s.write(frame);
    return afterThisTurn(at);
  },
  /** Resolves with the time (µs) raw frame `k` arrived here. */
  waitRawSeen({ k }: { k: number }): Promise<number> {
    const at = rawSeen.get(k);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => rawWaiters.set(k, resolve));
  },
  ...echoHandlers(() => node),
  /** Spawns an actor and joins it to the group; the time of the `join` call (µs) and its key. */
  join(): Promise<{ key: string; at: number }> {
    const ref = node!.spawn({ init: () => null, handleCall: (msg: unknown, state: null) => ({ reply: msg, state }) });
    const at = nowUs();
    node!.pg.join(GROUP, ref);
    return afterThisTurn({ key: keyOf(ref), at });
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
  /**
   * Resolves when no member of node `name` is left in this node's view: that time, when the
   * mesh reported `nodedown`, and when a raw socket to that node closed (µs).
   */
  waitGone({ name }: { name: string }): Promise<{ goneAt: number; downAt: number | undefined; rawClosedAt: number | undefined }> {
    return new Promise<number>((resolve) => {
      goneWaiters.push({ node: name, resolve });
      checkGone();
    }).then(async (goneAt) => {
      // The raw sockets closed in the same kernel step; wait for their events (bounded).
      for (let i = 0; i < 100 && rawClosedAt === undefined; i++) await new Promise((r) => setTimeout(r, 10));
      return { goneAt, downAt: downAt.get(name), rawClosedAt };
    });
  },
  async close(): Promise<null> {
    for (const s of rawOut) s.destroy();
    rawServer?.close();
    await node?.close();
    return null;
  },
});
