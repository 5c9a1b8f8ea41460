// ActorRef: the address of an actor, as plain data `{ node, id }`.
//
// Own enumerable fields are exactly `node` and `id`, so `structuredClone`, JSON and msgpack
// see plain data and two refs to the same actor compare equal by value. The runtime that
// routes its calls is kept in a private field and does not travel; a ref that arrives
// without one (decoded elsewhere, cloned) finds the runtime by node name through the
// process-wide registry of local runtimes.
import type { CallOptions } from './behavior.js';

/** What a ref needs from the runtime that routes it. Implemented by `ActorSystem`. */
export interface RefRouter {
  call(ref: ActorRefData, msg: unknown, options?: CallOptions): Promise<unknown>;
  cast(ref: ActorRefData, msg: unknown): void;
  stop(ref: ActorRefData, reason?: 'normal' | 'shutdown'): Promise<void>;
}

/** The serializable part of a ref. */
export interface ActorRefData {
  readonly node: string;
  readonly id: string;
}

const routers = new Map<string, RefRouter>();

/** Registers the runtime of a local node so unbound refs can find it. Internal. */
export function registerRouter(node: string, router: RefRouter): void {
  routers.set(node, router);
}

/** Removes a runtime registered with `registerRouter`. Internal. */
export function unregisterRouter(node: string, router: RefRouter): void {
  if (routers.get(node) === router) routers.delete(node);
}

function routerFor(ref: ActorRefData): RefRouter {
  const own = routers.get(ref.node);
  if (own) return own;
  // A remote ref that came without a runtime: only unambiguous when one node lives here.
  if (routers.size === 1) return routers.values().next().value as RefRouter;
  throw new Error(
    `ActorRef ${ref.id}@${ref.node} is not bound to a node: use node.ref(data) to bind it (${routers.size} local nodes)`,
  );
}

// Phantom fields carry the message and reply types without runtime cost.
declare const callType: unique symbol;
declare const replyType: unique symbol;
declare const castType: unique symbol;

export class ActorRef<C = unknown, R = unknown, K = unknown> implements ActorRefData {
  readonly node: string;
  readonly id: string;
  #router: RefRouter | undefined;
  declare readonly [callType]?: C;
  declare readonly [replyType]?: R;
  declare readonly [castType]?: K;

  constructor(node: string, id: string, router?: RefRouter) {
    this.node = node;
    this.id = id;
    this.#router = router;
  }

  /** Sends `msg` and resolves with the reply; rejects with CallTimeoutError, ActorDownError or NodeDownError. */
  call(msg: C, options?: CallOptions): Promise<R> {
    return (this.#router ?? routerFor(this)).call(this, msg, options) as Promise<R>;
  }

  /** Sends `msg` without waiting; lost silently if the actor is gone (as in Erlang). */
  cast(msg: K): void {
    (this.#router ?? routerFor(this)).cast(this, msg);
  }

  /** Stops the actor; queued and in-flight calls reject with ActorDownError. */
  stop(): Promise<void> {
    return (this.#router ?? routerFor(this)).stop(this, 'normal');
  }

  /** True when both name the same actor. */
  equals(other: ActorRefData | undefined | null): boolean {
    return !!other && other.node === this.node && other.id === this.id;
  }

  toJSON(): ActorRefData {
    return { node: this.node, id: this.id };
  }

  toString(): string {
    return `#ActorRef<${this.id}@${this.node}>`;
  }
}

/** True when `a` and `b` name the same actor (works on plain `{ node, id }` data too). */
export function sameRef(a: ActorRefData, b: ActorRefData): boolean {
  return a.node === b.node && a.id === b.id;
}

/** A map key for a ref. */
export const refKey = (ref: ActorRefData): string => `${ref.id}@${ref.node}`;

export function isRefData(v: unknown): v is ActorRefData {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as ActorRefData).node === 'string' &&
    typeof (v as ActorRefData).id === 'string'
  );
}
