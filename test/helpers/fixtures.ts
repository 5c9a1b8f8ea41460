// Small fixture functions for peer processes (see ./peers.ts: `peer.run(FIXTURES, 'name', ...)`).
// Each takes the peer context first. Kept generic so any integration test can use them.
import type { PeerContext } from './peer-main.js';
import type { ActorRefData } from '../../src/actors/ref.js';

/** Absolute URL of this module, for `peer.run(FIXTURES, ...)`. */
export const FIXTURES = new URL(import.meta.url).href;

function nodeOf(ctx: PeerContext) {
  if (!ctx.node) throw new Error('no node started in this peer');
  return ctx.node;
}

/** Spawns a counter actor (optionally under a well-known name) and returns its ref. */
export function spawnCounter(ctx: PeerContext, name?: string): ActorRefData {
  const ref = nodeOf(ctx).spawn(
    {
      init: () => 0,
      handleCall: (msg: { add: number } | 'get' | 'crash' | 'fn' | { echo: unknown } | { sleep: number }, state: number) => {
        if (msg === 'get') return { reply: state, state };
        if (msg === 'fn') return { reply: (() => 1) as unknown, state }; // a reply that cannot cross the wire
        if (msg === 'crash') throw new Error('asked to crash');
        if ('echo' in msg) return { reply: msg.echo, state };
        if ('sleep' in msg) return new Promise<{ reply: unknown; state: number }>((r) => setTimeout(() => r({ reply: 'slept', state }), msg.sleep));
        return { reply: state + msg.add, state: state + msg.add };
      },
      handleCast: (msg: { add: number }, state: number) => state + msg.add,
    },
    name === undefined ? {} : { name },
  );
  return { node: ref.node, id: ref.id };
}

/** `call` from this peer; returns the reply (errors travel back typed). */
export function call(ctx: PeerContext, ref: ActorRefData, msg: unknown, timeout?: number): Promise<unknown> {
  return nodeOf(ctx).ref(ref).call(msg, timeout === undefined ? undefined : { timeout });
}

/** `cast` from this peer. */
export function cast(ctx: PeerContext, ref: ActorRefData, msg: unknown): null {
  nodeOf(ctx).ref(ref).cast(msg);
  return null;
}

/** Stops an actor (local or remote) from this peer. */
export async function stop(ctx: PeerContext, ref: ActorRefData): Promise<null> {
  await nodeOf(ctx).ref(ref).stop();
  return null;
}

/** Monitors `ref` from this peer; the down reason arrives as event `down` with `tag`. */
export function monitor(ctx: PeerContext, ref: ActorRefData, tag: string): null {
  nodeOf(ctx).monitor(ref, (reason) => {
    const c = typeof reason === 'object' ? (reason.crashed as Error) : undefined;
    ctx.emit('down', tag, c ? { crashed: { name: c.name, message: c.message } } : reason);
  });
  return null;
}

/** Monitors `ref` and cancels the monitor at once; a later down must not be reported. */
export function monitorAndCancel(ctx: PeerContext, ref: ActorRefData, tag: string): null {
  const off = nodeOf(ctx).monitor(ref, (reason) => ctx.emit('down', tag, reason));
  off();
  return null;
}

/** Starts a call that settles later: its outcome arrives as event `settled` with `tag`. */
export function callInBackground(ctx: PeerContext, ref: ActorRefData, msg: unknown, tag: string, timeout?: number): null {
  const started = Date.now();
  call(ctx, ref, msg, timeout).then(
    (value) => ctx.emit('settled', tag, { ok: true, value, ms: Date.now() - started }),
    (err: Error) => ctx.emit('settled', tag, { ok: false, name: err.name, message: err.message, ms: Date.now() - started }),
  );
  return null;
}

/** Evaluates nothing: just answers, to prove the peer is alive. */
export function ping(_ctx: PeerContext): string {
  return 'pong';
}

/** Sends a function inside a message: must fail with SerializationError before sending. */
export function callWithFunction(ctx: PeerContext, ref: ActorRefData): Promise<unknown> {
  return nodeOf(ctx).ref(ref).call({ fn: () => 1 });
}

/** Spawns an actor that forwards `{ via: ref, msg }` as a call to `ref` (a ref that arrived inside a message). */
export function spawnForwarder(ctx: PeerContext, name?: string): ActorRefData {
  const ref = nodeOf(ctx).spawn(
    {
      init: () => null,
      handleCall: async (m: { via: { call(msg: unknown): Promise<unknown>; node: string; id: string }; msg: unknown }, state: null) => {
        // `m.via` was decoded into a live ActorRef: call it directly.
        const reply = await m.via.call(m.msg);
        return { reply: { reply, isRef: typeof m.via.call === 'function' }, state };
      },
    },
    name === undefined ? {} : { name },
  );
  return { node: ref.node, id: ref.id };
}

/** Calls `forwarder` with a live ref to `target` inside the message. */
export function callThrough(ctx: PeerContext, forwarder: ActorRefData, target: ActorRefData, msg: unknown): Promise<unknown> {
  const node = nodeOf(ctx);
  return node.ref(forwarder).call({ via: node.ref(target), msg });
}

/** Mesh diagnostics of this peer's node. */
export function meshInfo(ctx: PeerContext): unknown {
  const m = nodeOf(ctx).membership as unknown as { debugInfo(): unknown };
  return m.debugInfo();
}

/** Dials `address` from this peer's mesh (e.g. to race a simultaneous dial). */
export async function dial(ctx: PeerContext, address: string): Promise<null> {
  const m = nodeOf(ctx).membership as unknown as { connect(a: string): Promise<void> };
  await m.connect(address);
  return null;
}

/** Closes this peer's node (goodbye to every peer). */
export async function closeNode(ctx: PeerContext): Promise<null> {
  await nodeOf(ctx).close();
  return null;
}
