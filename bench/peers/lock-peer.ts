// A node process of the lock benchmark (forked by bench/lock.ts, driven over IPC): starts a
// cluster node, answers the floor measurements, and runs C contenders that loop
// `node.global.trans` on their resource, checking mutual exclusion on a shared invariant.
import type { Server } from 'node:net';
import type { Node } from '../../src/index.js';
import { serve } from '../lib/child.js';
import { nodeHandlers } from '../lib/node-handlers.js';
import { frameOf, startEchoServer, tcpPingPong, timedLoop } from '../lib/raw.js';
import { Invariant } from '../lib/invariant.js';
import { encodeHistogram, newHistogram } from '../lib/stats.js';

/** The part of `node.global` (API §4) the bench uses. */
interface GlobalLocks {
  trans<T>(resource: unknown, fn: (lock: { token: unknown }) => T | Promise<T>, options?: { nodes?: string[]; lease?: boolean }): Promise<T>;
}

let node: Node | undefined;
let echo: Server | undefined;

const locks = (): GlobalLocks => (node as unknown as { global: GlobalLocks }).global;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface ContendArgs {
  nodeIndex: number;
  contenders: number;
  resources: number;
  holdMs: number;
  warmupMs: number;
  durationMs: number;
  file: string;
}

export interface ContendResult {
  counts: number[];
  /** Acquire latency (call of trans to start of fn), µs, encoded HDR histogram. */
  histogram: string;
  violations: number;
  tokenViolations: number;
  tokenChecks: number;
  elapsedNs: number;
  /** Contenders whose last trans was still not granted STUCK_AFTER_MS after the end. */
  stuck: number;
  /** node.global.stats() as JSON when some were stuck. */
  stats: string;
}

const STUCK_AFTER_MS = 10_000;

async function contend(a: ContendArgs): Promise<ContendResult> {
  const inv = new Invariant(a.file);
  const h = newHistogram();
  const counts = new Array<number>(a.contenders).fill(0);
  let measuring = false;
  let stop = false;
  const now = process.hrtime.bigint;
  const loop = async (c: number): Promise<void> => {
    const global = a.nodeIndex * a.contenders + c;
    const id = global + 1;
    const resource = global % a.resources;
    const name = `bench-lock-${resource}`;
    while (!stop) {
      const t0 = now();
      await locks().trans(name, async (lock) => {
        const waited = Number(now() - t0) / 1000;
        inv.enter(resource, id, lock.token);
        if (a.holdMs > 0) await sleep(a.holdMs);
        inv.leave(resource, id);
        if (measuring) {
          h.recordValue(Math.max(1, Math.round(waited)));
          counts[c]!++;
        }
      });
      // Yield to the event loop between two grants, as any real caller does (I/O in or after
      // fn), so local contenders do not take turns in microtasks while remote requests wait
      // unread in the socket buffer.
      await yieldToEventLoop();
    }
  };
  const loops = Array.from({ length: a.contenders }, (_, c) => loop(c));
  await sleep(a.warmupMs);
  measuring = true;
  const start = now();
  await sleep(a.durationMs);
  measuring = false;
  const elapsedNs = Number(now() - start);
  stop = true;
  // Each loop ends after its trans in flight; one that is never granted is reported as
  // stuck (with the lock service's stats) instead of hanging the bench.
  let finished = 0;
  for (const l of loops) void l.then(() => finished++, () => finished++);
  const failed = await Promise.race([Promise.all(loops).then(() => undefined, (e: unknown) => e), sleep(STUCK_AFTER_MS).then(() => 'timeout')]);
  if (failed !== undefined && failed !== 'timeout') throw failed;
  const stuck = a.contenders - finished;
  inv.close();
  return {
    counts,
    histogram: encodeHistogram(h),
    violations: inv.violations,
    tokenViolations: inv.tokenViolations,
    tokenChecks: inv.tokenChecks,
    elapsedNs,
    stuck,
    stats: stuck > 0 ? JSON.stringify((node as unknown as { global: { stats(): unknown } }).global.stats()) : '',
  };
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
