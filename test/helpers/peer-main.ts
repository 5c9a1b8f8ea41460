// The child side of the peer helper (see ./peers.ts): one real node process, driven by the
// test over the IPC channel of `child_process.fork`, which is separate from the mesh.
//
// Requests `{ id, op, ... }` get one reply `{ id, ok: true, value }` or `{ id, ok: false,
// error: WireError }`. Node events (`nodeup`, `nodedown`, `refused`) and whatever a fixture
// passes to `ctx.emit` are pushed as `{ event, args }`.
import { pathToFileURL } from 'node:url';
import { isAbsolute } from 'node:path';
import { startNode, type Node, type NodeOptions } from '../../src/node.js';
import { toWire } from '../../src/errors.js';

/** What a fixture function receives as its first argument. */
export interface PeerContext {
  /** The node of this process (undefined before `start`). */
  node: Node | undefined;
  /** Scratch space shared by every fixture call in this process. */
  state: Map<string, unknown>;
  /** Sends an event to the test process (`peer.waitEvent(type)` there). */
  emit(type: string, ...args: unknown[]): void;
}

type Request =
  | { id: number; op: 'start'; options: NodeOptions }
  | { id: number; op: 'nodes' }
  | { id: number; op: 'run'; module: string; fn: string; args: unknown[] }
  | { id: number; op: 'close' }
  | { id: number; op: 'exit'; code?: number };

const send = (msg: unknown): void => {
  if (process.connected) process.send!(msg);
};

const ctx: PeerContext = {
  node: undefined,
  state: new Map(),
  emit: (type, ...args) => send({ event: type, args }),
};

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'start': {
      if (ctx.node) throw new Error('this peer already runs a node');
      const node = await startNode(req.options);
      ctx.node = node;
      for (const event of ['nodeup', 'nodedown', 'refused'] as const) {
        (node as unknown as NodeJS.EventEmitter).on(event, (...args: unknown[]) => ctx.emit(event, ...args.map(plain)));
      }
      // Peers connected while startNode ran (their nodeup fired before these listeners).
      return { name: node.name, address: node.address, nodes: node.nodes() };
    }
    case 'nodes':
      return ctx.node?.nodes() ?? [];
    case 'run': {
      const url = isAbsolute(req.module) ? pathToFileURL(req.module).href : req.module;
      const mod = (await import(url)) as Record<string, unknown>;
      const fn = mod[req.fn];
      if (typeof fn !== 'function') throw new Error(`${req.module} has no exported function ${req.fn}`);
      return plain(await fn(ctx, ...req.args));
    }
    case 'close':
      await ctx.node?.close();
      return null;
    case 'exit':
      setImmediate(() => process.exit(req.code ?? 0));
      return null;
  }
}

/** Errors become their wire shape so the test sees the right class; other values go as they are. */
function plain(v: unknown): unknown {
  return v instanceof Error ? { __error: toWire(v) } : v;
}

process.on('message', (req: Request) => {
  handle(req).then(
    (value) => send({ id: req.id, ok: true, value }),
    (err) => send({ id: req.id, ok: false, error: toWire(err) }),
  );
});
// Never outlive the test process.
process.on('disconnect', () => process.exit(0));
process.on('unhandledRejection', (err) => {
  ctx.emit('unhandledRejection', plain(err));
});
send({ event: 'ready', args: [] });
