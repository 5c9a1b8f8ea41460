// One store (the expirables of one `defineExpirables` call) on one node: its engines, its
// router actor, and the node it runs on, which for the embedded default is started on the
// first call that needs it. A namespace runs once per node: two stores with the same
// namespace would answer for each other's entries. A store on a backend (Redis) runs no node
// at all: its cluster scope goes through the backend, its local scope stays in the process.
import { InvalidOptionError } from '../errors.js';
import type { Node } from '../node.js';
import type { StoreNode } from './cluster.js';
import { ExpirableEngine, type EngineContext } from './engine.js';
import type { ExpirableSpec } from './spec.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { ActorRef } from '../actors/ref.js';
import type { Coordination, StoreInbox } from './backend.js';
import { LocalCoordination } from './backends/local.js';
import { MeshCoordination, spawnRouter } from './backends/mesh.js';
import { RedisCoordination } from './backends/redis/coordination.js';
import type { RedisBackend } from './backends/redis/backend.js';

/** Namespaces taken, per node (or per embedded-node getter, or per backend). */
const claimed = new WeakMap<object, Set<string>>();

export interface StoreOptions {
  namespace: string;
  /** The node, or a function that starts it on first use. */
  node: Node | (() => Promise<Node>);
  /** Milliseconds a peer has to answer an ask, push or clear. @default 2000 */
  peerTimeout?: number;
  /** The clock of every expiry, timeout and timer. @default the system clock */
  clock?: Clock;
  /** Where cluster-scope expirables coordinate. @default the node's mesh */
  backend?: RedisBackend;
}

export class Store implements EngineContext {
  readonly namespace: string;
  readonly peerTimeout: number;
  readonly clock: Clock;
  readonly engines = new Map<string, ExpirableEngine>();
  #closed = false;
  readonly #claimKey: object;
  readonly #getNode: () => Promise<Node>;
  #nodePromise: Promise<StoreNode> | undefined = undefined;
  #node: StoreNode | undefined = undefined;
  #router: ActorRef | undefined = undefined;
  /** Coordination of cluster-scope expirables, shared by this store's engines. */
  readonly #cluster: Coordination;
  /** The mesh coordination; none on a backend, whose store runs no node and no router. */
  readonly #mesh: MeshCoordination | undefined;
  /** What other nodes ask of this store, answered from its engines. */
  readonly #inbox: StoreInbox = {
    snapshot: (name, canon) => this.engines.get(name)?.peek(canon)?.snapshot(this.clock.now()) ?? null,
    roundFailed: (name, canon, error, from) => this.engines.get(name)?.applyRoundFailed(canon, error, from),
    cleared: (name, canon, v) => this.engines.get(name)?.applyClear(canon, v),
    keys: (name) => this.engines.get(name)?.keys() ?? [],
    clearedAll: (name, v) => {
      for (const [n, engine] of this.engines) if (name === undefined || name === n) engine.applyClearAll(v);
    },
    offered: (name, canon, snap, from) => this.engines.get(name)?.applyOffered(canon, snap, from),
  };

  constructor(options: StoreOptions, specs: ReadonlyMap<string, ExpirableSpec>) {
    this.namespace = options.namespace;
    this.peerTimeout = options.peerTimeout ?? 2_000;
    this.clock = options.clock ?? systemClock;
    const node = options.node;
    // On a backend the namespace is the backend's (one per store), not a node's: two stores of
    // one process with backends of their own are two members of the namespace, as two processes.
    this.#claimKey = options.backend ?? node;
    this.#getNode = typeof node === 'function' ? node : () => Promise.resolve(node);
    let set = claimed.get(this.#claimKey);
    if (!set) claimed.set(this.#claimKey, (set = new Set()));
    if (set.has(this.namespace)) {
      throw new InvalidOptionError('namespace', 'a namespace not already used by another store on this node (or close() that store first)', this.namespace);
    }
    set.add(this.namespace);
    // On Redis a store given its node is named by it among the holders (`replicas()`), as on the mesh.
    this.#mesh = options.backend ? undefined : new MeshCoordination(this);
    this.#cluster = this.#mesh ?? new RedisCoordination(options.backend!, this.namespace, this.#inbox, typeof node === 'function' ? undefined : node.name);
    for (const [name, spec] of specs) this.engines.set(name, new ExpirableEngine(this, name, spec));
    // A store given its node attaches now: its router answers peers and `replicas()` reads the
    // node's groups from the start, before this node calls any expirable of it. Only the
    // embedded default node starts lazily, on the first call that needs it.
    if (typeof node !== 'function' && this.#mesh) {
      try {
        this.#nodePromise = Promise.resolve(this.#attachTo(node));
      } catch {
        // The node is closed already: calls attach (and fail as 'unavailable') when made.
      }
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  node(): Promise<StoreNode> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    if (this.#node?.system.closed) return Promise.reject(new Error(`node ${this.#node.name} is closed`));
    if (this.#nodePromise) return this.#nodePromise;
    const p = this.#attach();
    this.#nodePromise = p;
    // A failed attach (the node did not start, the store closed meanwhile) is not kept:
    // the next call tries again instead of failing forever.
    p.catch(() => {
      if (this.#nodePromise === p) this.#nodePromise = undefined;
    });
    return p;
  }

  nodeNow(): StoreNode | undefined {
    return this.#node;
  }

  routerNow(): ActorRef | undefined {
    return this.#router;
  }

  /** Cluster scope: the store's backend (the mesh or Redis); local scope: a chain on this node (one per expirable). */
  coordination(spec: ExpirableSpec): Coordination {
    if (spec.scope === 'cluster') return this.#cluster;
    // On a backend, local scope needs no node either: it is named as the backend names this process.
    if (!this.#mesh) return new LocalCoordination({ ready: () => (this.#closed ? Promise.reject(new Error('the store is closed')) : Promise.resolve()), self: () => this.#cluster.self() });
    return new LocalCoordination({ ready: () => this.node(), self: () => this.#node?.name });
  }

  async #attach(): Promise<StoreNode> {
    const node = await this.#getNode();
    // Closed while the node started: spawn nothing (a router spawned now would outlive the
    // store, keep its well-known name and make the namespace unusable on this node).
    if (this.#closed) throw new Error('the store is closed');
    return this.#attachTo(node);
  }

  /** Spawns this store's router on `node` and makes it the store's node. */
  #attachTo(n: Node): StoreNode {
    const { node, router } = spawnRouter(n, this.namespace, this.#inbox, this.#mesh);
    this.#router = router;
    this.#node = node;
    return node;
  }

  /** Stops timers, replicas, the router here and the backend's subscriptions and connection; frees the namespace on this node. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const engine of this.engines.values()) engine.close();
    claimed.get(this.#claimKey)?.delete(this.namespace);
    await this.#cluster.close().catch(() => undefined);
    if (this.#router) await this.#router.stop().catch(() => undefined);
  }
}
