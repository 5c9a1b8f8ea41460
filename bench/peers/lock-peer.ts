// A node process of the lock benchmark (forked by bench/lock.ts, driven over IPC): starts a
// cluster node, answers the floor measurements, and runs C contenders that loop
// `node.global.trans` on their resource (the shared contend loop of ../lib/lock-workload.ts),
// checking mutual exclusion on a shared invariant.
import type { Server } from 'node:net';
import type { Node } from '../../src/index.js';
import { serve } from '../lib/child.js';
import { nodeHandlers } from '../lib/node-handlers.js';
import { frameOf, startEchoServer, tcpPingPong, timedLoop } from '../lib/raw.js';
import { contend as contendLoop, type ContendArgs, type ContendResult, type WithLock } from '../lib/lock-workload.js';

/** The part of `node.global` (API §4) the bench uses. */
interface GlobalLocks {
  trans<T>(resource: unknown, fn: (lock: { token: unknown }) => T | Promise<T>, options?: { nodes?: string[]; lease?: boolean }): Promise<T>;
}

let node: Node | undefined;
let echo: Server | undefined;

const locks = (): GlobalLocks => (node as unknown as { global: GlobalLocks }).global;
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What a node process reports from `contend`. */
export interface TransContendResult extends ContendResult {
  /** node.global.stats() as JSON when some were stuck. */
  stats: string;
}

/** How long after the end a contender may wait for its last trans before it is reported stuck, ms. */
const STUCK_AFTER_MS = 10_000;

/** Each trans is one grant; fn is the critical section. */
const withTrans: WithLock = async (name, critical) => {
  await locks().trans(name, (lock) => critical(lock.token));
  // Yield to the event loop between two grants, as any real caller does (I/O in or after
  // fn), so local contenders do not take turns in microtasks while remote requests wait
  // unread in the socket buffer.
  await yieldToEventLoop();
};

async function contend(a: ContendArgs): Promise<TransContendResult> {
  const r = await contendLoop(a, withTrans, { prefix: 'bench-lock-', drainMs: STUCK_AFTER_MS });
  // A contender never granted is reported with the lock service's stats.
  return { ...r, stats: r.stuck > 0 ? JSON.stringify((node as unknown as { global: { stats(): unknown } }).global.stats()) : '' };
}

serve({
  ...nodeHandlers(
    (n) => (node = n),
    () => node,
  ),
  async echoServer(): Promise<number> {
    const s = await startEchoServer();
    echo = s.server;
    return s.port;
  },
  /** Raw TCP round trips of a frame of `bytes` bytes to an echo server. */
  pingPong({ port, bytes, durationMs, warmupMs }: { port: number; bytes: number; durationMs: number; warmupMs?: number }) {
    return tcpPingPong(port, frameOf(new Uint8Array(bytes).fill(7)), durationMs, warmupMs);
  },
  /** Uncontended trans (acquire + empty fn + release) on `resource`, back to back; `lease: false` asks the coordinator every time. */
  uncontended({ resource, lease = true, durationMs, warmupMs }: { resource: string; lease?: boolean; durationMs: number; warmupMs?: number }) {
    const options = { lease };
    return timedLoop(() => locks().trans(resource, () => undefined, options), durationMs, warmupMs);
  },
  contend,
  async close(): Promise<null> {
    echo?.close();
    await node?.close();
    return null;
  },
});
