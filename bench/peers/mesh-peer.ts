// A node process of the mesh-rtt benchmark (forked by bench/mesh-rtt.ts, driven over IPC):
// a cluster node with an echo actor, the caller side of sequential and pipelined remote
// calls, and the raw floors (TCP echo server and client, MessagePort ping-pong).
import type { Server } from 'node:net';
import { Packr } from 'msgpackr';
import type { Node } from '../../src/index.js';
import { serve } from '../lib/child.js';
import { nodeHandlers } from '../lib/node-handlers.js';
import { frameOf, messagePortPingPong, startEchoServer, tcpPingPong, timedLoop } from '../lib/raw.js';
import type { ActorRefData } from '../../src/actors/ref.js';

let node: Node | undefined;
let echo: Server | undefined;

/** The message every call carries: small, like a counter's `{ add: 2 }`. */
const CALL_MSG = { add: 2 };

/** The bytes of a CALL frame as the mesh sends it ([20, callId, actorId, msg], msgpack). */
function callFrameBytes(actorId: string): Uint8Array {
  return new Packr({ useRecords: false }).pack([20, 123456, actorId, CALL_MSG]);
}

function echoBehavior() {
  return {
    init: () => null,
    handleCall: (msg: unknown, state: null) => ({ reply: msg, state }),
  };
}

serve({
  ...nodeHandlers(
    (n) => (node = n),
    () => node,
  ),
  spawnEcho(): ActorRefData {
    const ref = node!.spawn(echoBehavior(), { name: 'bench-echo' });
    return { node: ref.node, id: ref.id };
  },
  /** Sequential remote calls for `durationMs`: round trips in an HDR histogram (ns). */
  callLoop({ ref, durationMs }: { ref: ActorRefData; durationMs: number }) {
    const r = node!.ref(ref);
    return timedLoop(() => r.call(CALL_MSG), durationMs);
  },
  /** `inflight` calls outstanding at all times for `durationMs`; completed calls per second. */
  async pipelined({ ref, inflight, durationMs }: { ref: ActorRefData; inflight: number; durationMs: number }) {
    const r = node!.ref(ref);
    let done = 0;
    let counting = false;
    let stop = false;
    const lane = async (): Promise<void> => {
      while (!stop) {
        await r.call(CALL_MSG, { timeout: 60_000 });
        if (counting) done++;
      }
    };
    const lanes = Array.from({ length: inflight }, lane);
    await new Promise((res) => setTimeout(res, Math.min(500, durationMs * 0.2)));
    counting = true;
    const t0 = process.hrtime.bigint();
    await new Promise((res) => setTimeout(res, durationMs));
    counting = false;
    const elapsedNs = Number(process.hrtime.bigint() - t0);
    stop = true;
    await Promise.all(lanes);
    return { perSec: done / (elapsedNs / 1e9) };
  },
  /** Starts a worker-thread node of this node; resolves once its echo actor answers. */
  async startWorker({ name }: { name: string }): Promise<ActorRefData> {
    const w = await node!.startWorker(new URL('./mesh-worker.ts', import.meta.url), { name });
    const ref = { node: w.name, id: 'bench-echo' };
    for (let i = 0; ; i++) {
      try {
        await node!.ref(ref).call(CALL_MSG, { timeout: 1000 });
        return ref;
      } catch (e) {
        if (i >= 50) throw e; // the echo actor may be spawned just after the link is up
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  },
  async echoServer(): Promise<number> {
    const s = await startEchoServer();
    echo = s.server;
    return s.port;
  },
  /** Raw TCP ping-pong of the CALL frame's bytes. */
  pingPong({ port, durationMs }: { port: number; durationMs: number }) {
    return tcpPingPong(port, frameOf(callFrameBytes('bench-echo')), durationMs);
  },
  /** Raw MessagePort ping-pong with a worker thread, of the CALL frame's bytes. */
  portPingPong({ durationMs }: { durationMs: number }) {
    return messagePortPingPong(frameOf(callFrameBytes('bench-echo')), durationMs);
  },
  async close(): Promise<null> {
    echo?.close();
    await node?.close();
    return null;
  },
});
