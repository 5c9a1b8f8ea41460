// The actor runtime of one node: spawns actors, routes call/cast/stop/monitor to local
// actors, and hands anything addressed to another node to the remote router that the mesh
// plugs in (`setRemote`). This layer knows nothing of sockets: without a router, a ref on
// another node is simply unreachable (NodeDownError).
import { randomBytes } from 'node:crypto';
import { ActorDownError, InvalidOptionError, NodeDownError, type DownReason } from '../errors.js';
import { Actor, type DownListener } from './actor.js';
import type { Behavior, CallOptions, SpawnOptions } from './behavior.js';
import { CallSlot } from './call-slot.js';
import { Deadlines } from './deadlines.js';
import { ActorRef, registerRouter, unregisterRouter, type ActorRefData, type RefRouter } from './ref.js';

/** What the mesh provides for refs on other nodes. */
export interface RemoteRouter {
  /** Settles `slot` with the remote reply, or with NodeDownError / ActorDownError. */
  call(ref: ActorRefData, msg: unknown, slot: CallSlot): void;
  /**
   * Sends `msg` without an answer. `plain`: the runtime built it from plain data (see
   * `ActorSystem.castPlain`), so the router may skip checking what is in it.
   */
  cast(ref: ActorRefData, msg: unknown, plain?: boolean): void;
  stop(ref: ActorRefData, reason: 'normal' | 'shutdown'): Promise<void>;
  /** Calls `fn` once when the remote actor goes down or its node does; returns a cancel function. */
  monitor(ref: ActorRefData, fn: DownListener): () => void;
}

export interface ActorSystemOptions {
  /** This node's name; every local ref carries it. */
  name: string;
  /** Default `call` timeout in ms. @default 5000 */
  callTimeout?: number;
}

export const DEFAULT_CALL_TIMEOUT = 5_000;

export class ActorSystem implements RefRouter {
  readonly name: string;
  /** Default call timeout (ms). */
  callTimeout: number;
  /** Live local actors by id. */
  readonly #actors = new Map<string, Actor>();
  readonly #deadlines = new Deadlines();
  /** Random per-incarnation prefix, so a restarted node with the same name never reuses an id. */
  readonly #incarnation = randomBytes(4).toString('hex');
  #nextId = 0;
  #remote: RemoteRouter | undefined = undefined;
  /** Runtime services by id (see `serve`). */
  readonly #services = new Map<string, (msg: unknown) => void>();
  #closed = false;

  constructor(options: ActorSystemOptions) {
    if (typeof options.name !== 'string' || options.name.length === 0) {
      throw new InvalidOptionError('name', 'a non-empty string', options.name);
    }
    const timeout = options.callTimeout ?? DEFAULT_CALL_TIMEOUT;
    checkTimeout('callTimeout', timeout);
    this.name = options.name;
    this.callTimeout = timeout;
    registerRouter(this.name, this);
  }

  /** Plugs in the mesh's router for refs on other nodes. */
  setRemote(router: RemoteRouter | undefined): void {
    this.#remote = router;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts an actor on this node and returns its ref at once; `init` runs before any message. */
  spawn<S, C = never, R = never, K = never>(behavior: Behavior<S, C, R, K>, options: SpawnOptions = {}): ActorRef<C, R, K> {
    if (this.#closed) throw new NodeDownError(this.name, 'closed');
    if (typeof behavior?.init !== 'function') throw new InvalidOptionError('behavior.init', 'a function', behavior?.init);
    let id: string;
    if (options.name !== undefined) {
      if (typeof options.name !== 'string' || options.name.length === 0) {
        throw new InvalidOptionError('name', 'a non-empty string', options.name);
      }
      if (this.#actors.has(options.name)) {
        throw new InvalidOptionError('name', `a name no live actor of node ${this.name} already has`, options.name);
      }
      id = options.name;
    } else {
      id = `${this.#incarnation}.${++this.#nextId}`;
    }
    const ref = new ActorRef<C, R, K>(this.name, id, this);
    const actor = new Actor(ref as ActorRef, behavior as unknown as Behavior<unknown, unknown, unknown, unknown>, this.#onDown);
    this.#actors.set(id, actor);
    return ref;
  }

  #onDown = (actor: Actor): void => {
    if (this.#actors.get(actor.ref.id) === actor) this.#actors.delete(actor.ref.id);
  };

  /** A ref bound to this node's runtime, from plain `{ node, id }` data. */
  ref<C = unknown, R = unknown, K = unknown>(data: ActorRefData): ActorRef<C, R, K> {
    return new ActorRef<C, R, K>(data.node, data.id, this);
  }

  /** True if `ref` names a live actor of this node. */
  isLocalAlive(ref: ActorRefData): boolean {
    return ref.node === this.name && this.#actors.has(ref.id);
  }

  /** Length of the array behind a local actor's mailbox (handled slots included); for leak tests. */
  debugMailboxSize(ref: ActorRefData): number {
    return this.#actors.get(ref.id)?.mailboxArrayLength ?? 0;
  }

  /** Ids of the live local actors. */
  localIds(): IterableIterator<string> {
    return this.#actors.keys();
  }

  call(ref: ActorRefData, msg: unknown, options?: CallOptions): Promise<unknown> {
    const timeout = options?.timeout ?? this.callTimeout;
    if (options?.timeout !== undefined) checkTimeout('timeout', timeout);
    const slot = new CallSlot(ref, timeout, msg);
    const deadlines = timeout !== Infinity ? this.#deadlines : undefined;
    if (ref.node === this.name) {
      const actor = this.#actors.get(ref.id);
      // An idle actor answers in the next microtask: the deadline waits for that (see CallSlot).
      const answer = actor?.callIdle(slot, deadlines);
      if (answer !== undefined) return answer;
      deadlines?.add(slot, timeout);
      if (actor) actor.enqueueCall(slot);
      else slot.fail(new ActorDownError(ref, 'noproc'));
      return slot.promise;
    }
    deadlines?.add(slot, timeout);
    if (this.#remote) {
      slot.msg = undefined;
      this.#remote.call(ref, msg, slot);
    } else {
      slot.fail(new NodeDownError(ref.node, 'not connected'));
    }
    return slot.promise;
  }

  /** Delivers a call that arrived from another node to a local actor. */
  callLocal(id: string, msg: unknown, slot: CallSlot): void {
    const actor = this.#actors.get(id);
    if (actor) {
      slot.msg = msg;
      actor.enqueueCall(slot);
    } else {
      slot.fail(new ActorDownError({ node: this.name, id }, 'noproc'));
    }
  }

  cast(ref: ActorRefData, msg: unknown): void {
    if (ref.node === this.name) {
      const service = this.#services.get(ref.id);
      if (service !== undefined) service(msg);
      else this.#actors.get(ref.id)?.enqueueCast(msg);
    } else {
      this.#remote?.cast(ref, msg);
    }
  }

  /**
   * `cast` for the runtime's own services (locks, process groups), whose messages the library
   * builds from plain data only: strings, finite numbers, booleans, null, arrays and plain
   * objects of those. To another node such a message skips the mesh's check of the values a
   * caller hands it (one walk of every message: on the lock protocol's path, a cost without
   * a purpose). Never for a value that came from outside the library.
   */
  castPlain(ref: ActorRefData, msg: unknown): void {
    if (ref.node === this.name) this.cast(ref, msg);
    else this.#remote?.cast(ref, msg, true);
  }

  /**
   * A runtime service under a well-known id: casts to `id` (from this node, or from others
   * through the mesh) are handed to `handler` as they are delivered, synchronously and in
   * arrival order, instead of through an actor's mailbox. For services whose handler is
   * synchronous and never throws (the lock service), where the mailbox's microtask hop is a
   * cost on every message. An actor with that id no longer receives casts. Returns an undo.
   */
  serve(id: string, handler: (msg: unknown) => void): () => void {
    this.#services.set(id, handler);
    return () => {
      if (this.#services.get(id) === handler) this.#services.delete(id);
    };
  }

  stop(ref: ActorRefData, reason: 'normal' | 'shutdown' = 'normal'): Promise<void> {
    if (ref.node === this.name) {
      const actor = this.#actors.get(ref.id);
      return actor ? actor.stop(reason) : Promise.resolve();
    }
    if (this.#remote) return this.#remote.stop(ref, reason);
    return Promise.reject(new NodeDownError(ref.node, 'not connected'));
  }

  /**
   * Calls `fn` once when the actor stops, crashes or its node goes down; a ref already gone
   * is reported at once (in a microtask). Returns a function that cancels the monitor.
   */
  monitor(ref: ActorRefData, fn: DownListener): () => void {
    if (ref.node === this.name) {
      const actor = this.#actors.get(ref.id);
      let fired = false;
      const once: DownListener = (reason) => {
        if (fired) return;
        fired = true;
        fn(reason);
      };
      if (!actor || !actor.addMonitor(once)) {
        queueMicrotask(() => once('noproc'));
        return () => {
          fired = true;
        };
      }
      return () => {
        fired = true;
        actor.removeMonitor(once);
      };
    }
    if (this.#remote) return this.#remote.monitor(ref, fn);
    let cancelled = false;
    queueMicrotask(() => {
      if (!cancelled) fn('noconnection');
    });
    return () => {
      cancelled = true;
    };
  }

  /** Stops every local actor (reason 'shutdown'); resolves when all are down. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#services.clear();
    const actors = [...this.#actors.values()];
    await Promise.all(actors.map((a) => a.kill('shutdown')));
    this.#deadlines.dispose();
    unregisterRouter(this.name, this);
  }
}

function checkTimeout(option: string, value: unknown): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new InvalidOptionError(option, 'a non-negative number of milliseconds (or Infinity)', value);
  }
}

export type { DownReason };
