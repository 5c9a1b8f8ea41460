// The mesh coordination of cluster-scope expirables (see ../backend.ts for the port): the
// global lock of the entry grants the right to write it (its fencing token), the router actor
// every store runs on every node answers asks, clears, pushes and failures, and is the
// member of the process group of each entry whose replica holds a value here (one actor per
// store and node, however many keys). The protocol itself, its messages and its failure
// handling are described in ../replication.ts.
import type { ActorRef } from '../../actors/ref.js';
import type { Node } from '../../node.js';
import type { Coordination, Holding, PeerSnapshot, RefreshFailed, ReplicaListener, StoreInbox } from '../backend.js';
import { requireCluster, storeNode, type StoreNode } from '../cluster.js';
import type { Snapshot } from '../replica.js';
import { askPeers, broadcastClear, collectKeys, pushToAll, routerBehavior, routerCasts, routerId, tellFailure, tellRoundFailed, type RouterHandlers } from '../replication.js';

/** What the mesh coordination needs from its store. */
export interface MeshContext {
  readonly namespace: string;
  /** Milliseconds a peer has to answer an ask, a push or a clear. */
  readonly peerTimeout: number;
  /** The node (the embedded one starts on first use). */
  node(): Promise<StoreNode>;
  /** The node if it is already up. */
  nodeNow(): StoreNode | undefined;
  /** The store's router on its node, once spawned (see spawnRouter). */
  routerNow(): ActorRef | undefined;
}

/**
 * Spawns the router of the store `namespace` on `node`: it answers other nodes from `inbox`.
 * Its calls (ask, clear, keys, failed) go through its mailbox; the casts to its id (the
 * pushes of written values) are served as they are delivered, with no mailbox hop, until
 * the router stops.
 */
export function spawnRouter(n: Node, namespace: string, inbox: StoreInbox, coordination: MeshCoordination | undefined): { node: StoreNode; router: ActorRef } {
  const node = storeNode(n);
  const handlers: RouterHandlers = {
    ask: (name, canon) => inbox.snapshot(name, canon),
    failed: (name, canon, error, from) => inbox.roundFailed(name, canon, error, from),
    clear: (name, canon, v) => inbox.cleared(name, canon, v),
    keys: (name) => inbox.keys(name),
    put: (name, canon, snap, from) => inbox.offered(name, canon, snap, from),
    refreshFailed: (group, msg) => coordination?.heardRefreshFailed(group, msg),
  };
  const id = routerId(namespace);
  const router = node.spawn(routerBehavior(handlers), { name: id }) as ActorRef;
  const unserve = n.system.serve(id, routerCasts(handlers));
  node.monitor(router, () => unserve());
  return { node, router };
}

export class MeshCoordination implements Coordination {
  readonly #ctx: MeshContext;
  /** The replicas held here, by group (resource): who hears of another replica's failed refresh. */
  readonly #held = new Map<string, ReplicaListener>();

  constructor(ctx: MeshContext) {
    this.#ctx = ctx;
  }

  self(): string | undefined {
    return this.#ctx.nodeNow()?.name;
  }

  async exclusive<T>(_name: string, _canon: string, resource: string, _current: number, fn: (token: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    // Without an await when the node is up, so lock requests leave in call order.
    const node = this.#ctx.nodeNow() ?? (await this.#ctx.node());
    requireCluster(node);
    return node.global.trans(resource, (lock) => fn(lock.token), signal ? { signal } : undefined);
  }

  learn(name: string, canon: string, since: number, enough?: (s: PeerSnapshot) => boolean, holdersOf?: string): Promise<PeerSnapshot | undefined> {
    const node = this.#ctx.nodeNow();
    if (!node) return Promise.resolve(undefined);
    const only = holdersOf === undefined ? undefined : node.pg.getMembers(holdersOf).map((m) => m.node);
    if (only?.length === 0) return Promise.resolve(undefined);
    return askPeers(node, this.#ctx.namespace, name, canon, this.#ctx.peerTimeout, since, enough, only);
  }

  /** Sends at once, in this call (see pushToAll); nothing to wait for. */
  publish(name: string, canon: string, _resource: string, snap: Snapshot): Promise<undefined> {
    const node = this.#ctx.nodeNow();
    if (node) pushToAll(node, this.#ctx.namespace, name, canon, snap);
    return Promise.resolve(undefined);
  }

  async roundFailed(name: string, canon: string, error: Error): Promise<void> {
    const node = this.#ctx.nodeNow();
    if (node) await tellRoundFailed(node, this.#ctx.namespace, name, canon, error, this.#ctx.peerTimeout);
  }

  refreshFailed(resource: string, msg: RefreshFailed): void {
    const node = this.#ctx.nodeNow();
    if (node) tellFailure(node, resource, msg, this.#ctx.peerTimeout);
  }

  async clear(name: string, canon: string, version: number): Promise<void> {
    const node = this.#ctx.nodeNow() ?? (await this.#ctx.node());
    await broadcastClear(node, this.#ctx.namespace, name, canon, version, this.#ctx.peerTimeout);
  }

  async keys(name: string): Promise<Map<string, unknown>> {
    const node = await this.#ctx.node();
    requireCluster(node);
    return collectKeys(node, this.#ctx.namespace, name, this.#ctx.peerTimeout);
  }

  /** No generations on the mesh: the engine clears the keys every node lists, one by one. */
  clearAll(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  hold(_name: string, _canon: string, resource: string, listener: ReplicaListener): Holding | undefined {
    const node = this.#ctx.nodeNow();
    const router = this.#ctx.routerNow();
    if (!node || !router) return undefined;
    // The router is this store's place in the entry's group (`holders`): pushes reach the
    // replica through it (see spawnRouter), and so do the other replicas' failed refreshes.
    this.#held.set(resource, listener);
    node.pg.join(resource, router);
    return new MeshHolding(this, resource, router, listener);
  }

  /** Ends one holding (see MeshHolding): leaves the group; forgets the listener if it is still this one's. */
  release(resource: string, router: ActorRef, listener: ReplicaListener): void {
    if (this.#held.get(resource) === listener) this.#held.delete(resource);
    try {
      this.#ctx.nodeNow()?.pg.leave(resource, router);
    } catch {
      // the node is closing: its groups go with it
    }
  }

  /** Another node's replica of `resource` failed to refresh it (through the router). */
  heardRefreshFailed(resource: string, msg: RefreshFailed): void {
    this.#held.get(resource)?.refreshFailed(msg);
  }

  /** The router is the store's, stopped by the store. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  peersHolding(resource: string): boolean {
    const node = this.#ctx.nodeNow();
    if (!node?.pg) return false;
    for (const m of node.pg.getMembers(resource)) if (m.node !== node.name) return true;
    return false;
  }

  holders(_name: string, _canon: string, resource: string): string[] {
    const node = this.#ctx.nodeNow();
    if (!node?.pg) return [];
    const names = new Set<string>();
    for (const m of node.pg.getMembers(resource)) names.add(m.node);
    return [...names].sort();
  }
}

/** One held entry's place in its group: one small object per held key (no closure). */
class MeshHolding implements Holding {
  #released = false;

  constructor(
    readonly coordination: MeshCoordination,
    readonly resource: string,
    readonly router: ActorRef,
    readonly listener: ReplicaListener,
  ) {}

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.coordination.release(this.resource, this.router, this.listener);
  }
}
