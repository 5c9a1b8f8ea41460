// `node.global`: the lock service facade. Validates `trans` options, keeps re-entrance in the
// library's one async context (util/held-context.ts), serves the well-known id `global` that receives the protocol's casts, and wires
// the membership view to the coordinator (./coordinator.ts) and requester (./requester.ts)
// sides. The design, guarantees and failure model are in ./index.ts.
import { InvalidOptionError, LockNotAcquiredError, type LockFailure } from '../../errors.js';
import type { ActorSystem } from '../../actors/system.js';
import type { Membership } from '../membership.js';
import { longTimeout, type TimerHandle } from '../../util/timers.js';
import { monotonicNow } from '../../util/clock.js';
import { heldUnder, leaveHolding, runHolding } from '../../util/held-context.js';
import { KEY_ESC, MAX_RESOURCE_TEXT, canonicalKey } from '../canonical-key.js';
import { rendezvous } from './rendezvous.js';
import { TokenMemory } from './fencing.js';
import { Coordinator, type CoordinatorStats, type QueueInfo } from './coordinator.js';
import { Requester, type Request } from './requester.js';
import { lockChannels, registerLockMemory } from './diagnostics.js';
import { decodeLockMsg, encodeLockBatch, encodeLockMsg, LOCKS_PER_PART, lockBatchOf, recordParts, viewKey, type LockMsg } from './messages.js';

/** Lock messages in one cast at most (see #flushOutbox). */
const MAX_BATCH = 64;

/**
 * Lock winners of the default node set cached at most (a rendezvous costs one hash per
 * node); beyond, the cache starts again. A working set of locks up to this size never
 * misses, and the cache does not grow with the locks ever taken.
 */
const WINNERS_CACHE = 1024;

/** Messages to self handled per turn of the event loop before yielding to I/O and timers. */
const SELF_BUDGET = 256;

let serviceSeq = 0;

/** The well-known actor id of the lock service on every node. */
export const GLOBAL_ACTOR = 'global';

export interface TransOptions {
  /**
   * Nodes among which the lock is exclusive. `[node.name]` is a node-local lock. Calls on the
   * same resource with different node sets are different locks (use one set per resource).
   * @default this node and every node connected now
   */
  nodes?: readonly string[];
  /**
   * Give up at once (LockNotAcquiredError, reason `'retries'`) when more than this many
   * holders are ahead in the queue; `0` is a try-lock. As `:global.trans`, where each retry
   * waits for one holder to let go, but decided once, with no polling.
   * @default Infinity (wait as long as it takes)
   */
  retries?: number;
  /** Milliseconds to wait for the lock before giving up (reason `'timeout'`). @default Infinity */
  timeout?: number;
  /** Gives up (reason `'aborted'`) when aborted before the lock is granted. */
  signal?: AbortSignal;
  /**
   * Accept a lease: when this node keeps taking the lock (LEASE_STREAK grants in a row, with
   * nobody else waiting), its coordinator leases it here, and the next calls take it again
   * with no message until another node asks (see docs/locks.md). `false` makes every call
   * of this one go through the coordinator.
   * @default true
   */
  lease?: boolean;
}

/** What `fn` receives: the lock it runs under. */
export interface Lock {
  readonly resource: unknown;
  /**
   * Fencing token: strictly greater for every grant of this lock, also across the death of
   * a holder or of the coordinator. Pass it to the protected store and let it refuse writes
   * carrying a token lower than one it has seen.
   */
  readonly token: number;
  /** False once the lock is released (fn settled) or lost (the node closed). */
  readonly held: boolean;
}

export interface LockStats {
  /** `trans` calls that asked for a lock (re-entrant calls not counted). */
  acquires: number;
  /** Of those, granted. */
  grants: number;
  /** Of the grants, those that queued behind another holder. */
  waits: number;
  /** `trans` calls that ran at once under a lock their context already held. */
  reentries: number;
  /** Of the grants, those taken from a lease this node held idle (no message). */
  retakes: number;
  /** `trans` calls that gave up, by reason. */
  failures: Record<LockFailure, number>;
  /** Milliseconds from `trans` to grant, over all grants. */
  waitMs: { total: number; max: number };
  /** This node's requests now. */
  holding: number;
  waiting: number;
  /** Locks this node keeps idle under a lease now (not counted in `holding`). */
  leased: number;
  /** This node as coordinator. */
  coordinator: CoordinatorStats;
  /** Locks coordinated here that are held or waited for now, with their queue lengths. */
  queues: QueueInfo[];
}

class HeldLock implements Lock {
  readonly resource: unknown;
  readonly token: number;
  readonly #request: Request;
  constructor(request: Request) {
    this.resource = request.resource;
    this.token = request.token;
    this.#request = request;
  }
  get held(): boolean {
    return this.#request.state === 'holding';
  }
  get request(): Request {
    return this.#request;
  }
}

export class GlobalLocks {
  readonly #self: string;
  readonly #system: ActorSystem;
  readonly #membership: Membership;
  readonly #actorId: string;
  /** Live peers, self excluded, as this service has seen the nodeup/nodedown events. */
  readonly #up = new Set<string>();
  /** Every peer ever seen up (a reported holder on one of them that is not up now is gone). */
  readonly #seen = new Set<string>();
  /** lk -> winner of the default node set, cleared on each view change (at most WINNERS_CACHE). */
  #winners = new Map<string, string | undefined>();
  /** This node's view as one text (messages.ts viewKey), made once per view change. */
  #view: string | undefined = undefined;
  readonly #tokens = new TokenMemory();
  readonly #coordinator: Coordinator;
  readonly #requester: Requester;
  /** The locks held by the current async context: lk -> lock. */
  /** Prefix of this service's keys in the shared re-entrance context. */
  readonly #ctxPrefix = `${++serviceSeq}\0`;
  #closed = false;
  /** Encoded messages to other nodes in this tick, per node, in send order. */
  #outbox = new Map<string, unknown[]>();
  /** Messages to self not yet handled, in send order. */
  #selfQueue: LockMsg[] = [];
  #selfScheduled = false;
  /** Self messages still allowed in this turn of the event loop. */
  #selfBudget = SELF_BUDGET;
  readonly #counts = {
    acquires: 0,
    grants: 0,
    waits: 0,
    reentries: 0,
    waitTotal: 0,
    waitMax: 0,
    failures: { timeout: 0, retries: 0, aborted: 0, closed: 0, unreachable: 0 } as Record<LockFailure, number>,
  };

  constructor(system: ActorSystem, membership: Membership, options: { actorId?: string } = {}) {
    this.#self = membership.self;
    this.#system = system;
    this.#membership = membership;
    this.#actorId = options.actorId ?? GLOBAL_ACTOR;
    for (const n of membership.nodes()) {
      this.#up.add(n);
      this.#seen.add(n);
    }
    const ctx = {
      self: this.#self,
      send: this.#send,
      winner: (lk: string, set: string[] | null) => this.#winner(lk, set),
      tokens: this.#tokens,
    };
    this.#coordinator = new Coordinator({
      ...ctx,
      peers: () => this.#up,
      isUp: (node) => node === this.#self || this.#up.has(node),
      seen: (node) => node === this.#self || this.#seen.has(node),
      localReport: (lk, coordinator) => this.#requester.report(lk, coordinator),
      localLocks: () => this.#requester.lockKeys(),
      view: () => this.#viewKey(),
    });
    this.#requester = new Requester(ctx, {
      onGranted: (r) => this.#onGranted(r),
      onFailed: (r, reason) => this.#onFailed(r, reason),
    });
    // The protocol's casts are handled as they are delivered (no mailbox hop; the handlers
    // are synchronous). A malformed message (another version, a bug) is dropped with a
    // warning, and in a batch only it: the lock service must not stop on bad input.
    system.serve(this.#actorId, (wire) => {
      const batch = lockBatchOf(wire);
      if (batch === undefined) this.#receive(wire);
      else for (const w of batch) this.#receive(w);
    });
    membership.on('nodeup', this.#onNodeUp);
    membership.on('nodedown', this.#onNodeDown);
    registerLockMemory(this, () => ({ ...this.#coordinator.memory(), ...this.#requester.memory(), winners: this.#winners.size }));
    this.#coordinator.survey();
  }

  /**
   * Runs `fn` while holding the lock on `resource` among `options.nodes`, and releases it when
   * `fn` settles; resolves or rejects as `fn` does. Rejects with LockNotAcquiredError (and
   * `fn` never runs) when `retries`, `timeout` or `signal` make it give up, when the node is
   * closed, or when no node of an explicit node set is connected.
   */
  async trans<T>(resource: unknown, fn: (lock: Lock) => T | Promise<T>, options: TransOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidOptionError('fn', 'a function', fn);
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'an object', options);
    const { lk, set } = this.#lockKey(resource, options.nodes);
    const retries = checkRetries(options.retries);
    const timeout = checkTimeout(options.timeout);
    const signal = checkSignal(options.signal);
    const lease = options.lease ?? true;
    if (typeof lease !== 'boolean') throw new InvalidOptionError('lease', 'a boolean', lease);

    // Re-entrance: the same lock held by this async context runs fn at once.
    const held = heldUnder(this.#ctxPrefix + lk) as HeldLock | undefined;
    if (held?.held) {
      this.#counts.reentries++;
      return await fn(held);
    }
    if (this.#closed) throw this.#fail(resource, lk, 'closed', `node ${this.#self} is closed`);
    if (signal?.aborted) throw this.#fail(resource, lk, 'aborted', abortDetail(signal));
    const coord = this.#winner(lk, set);
    if (coord === undefined) throw this.#fail(resource, lk, 'unreachable', 'no node of its node set is connected');

    this.#counts.acquires++;
    if (lockChannels.acquire.hasSubscribers) {
      lockChannels.acquire.publish({ node: this.#self, resource, lock: lk, nodes: options.nodes });
    }
    const r = this.#requester.start(lk, set, resource, retries, coord, lease);
    if (r.state === 'waiting' && (timeout !== Infinity || signal)) {
      let timer: TimerHandle | undefined;
      if (timeout !== Infinity) timer = longTimeout(() => this.#requester.giveUp(r, 'timeout', `waited ${timeout} ms`), timeout);
      const onAbort = (): void => this.#requester.giveUp(r, 'aborted', abortDetail(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      r.cleanup = () => {
        timer?.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
    }
    await r.granted.promise;
    // Granted, but `close()` ran before this call resumed (a retaken lease is granted at once):
    // the lock was let go, and fn must not run without it.
    if (r.state !== 'holding') throw this.#fail(resource, lk, 'closed', `node ${this.#self} is closed`);

    const lock = new HeldLock(r);
    let result: T | Promise<T>;
    let thenable: boolean;
    // The lock is released before the context is left: `lock.held` is false by then.
    try {
      result = runHolding(this.#ctxPrefix + lk, lock, fn, lock);
      thenable = isThenable(result); // reading `then` may throw too
    } catch (err) {
      this.#release(r);
      leaveHolding();
      throw err;
    }
    // A synchronous fn has settled already: release now rather than a microtask later.
    if (!thenable) {
      this.#release(r);
      leaveHolding();
      return result as T;
    }
    try {
      return await result;
    } finally {
      this.#release(r);
      leaveHolding();
    }
  }

  /** Counters, current holders and waiters, and queue lengths of the locks coordinated here. */
  stats(): LockStats {
    const c = this.#counts;
    return {
      acquires: c.acquires,
      grants: c.grants,
      waits: c.waits,
      reentries: c.reentries,
      retakes: this.#requester.retakes,
      failures: { ...c.failures },
      waitMs: { total: c.waitTotal, max: c.waitMax },
      holding: this.#requester.holding,
      waiting: this.#requester.waiting,
      leased: this.#requester.leased,
      coordinator: this.#coordinator.stats(),
      queues: this.#coordinator.queues(),
    };
  }

  /**
   * Leaves the lock service: waiting `trans` calls reject (reason `'closed'`), held locks are
   * released (their `fn` keeps running, but `lock.held` turns false and the next waiter gets
   * the lock), and the messages saying so are on their way before this resolves.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Idle leases go now, and a call that settles later keeps none.
    this.#requester.close();
    // Waiters first, including those granted in a run behind a holder of this node, so that
    // releasing the holder passes the lock to none of them.
    const live = this.#requester.all();
    for (const r of live) {
      if (r.state === 'waiting' || r.state === 'granted') this.#requester.giveUp(r, 'closed', `node ${this.#self} is closed`);
    }
    for (const r of live) this.#release(r);
    // Let grants this node makes as coordinator for its own releases reach the mailbox.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#membership.off('nodeup', this.#onNodeUp);
    this.#membership.off('nodedown', this.#onNodeDown);
  }

  #release(r: Request): void {
    if (r.state !== 'holding') return;
    this.#requester.release(r);
    if (lockChannels.release.hasSubscribers) {
      lockChannels.release.publish({ node: this.#self, resource: r.resource, lock: r.lk, token: r.token, heldMs: monotonicNow() - r.grantedAt });
    }
  }

  #onGranted(r: Request): void {
    const c = this.#counts;
    const waitMs = r.grantedAt - r.startedAt;
    c.grants++;
    if (r.waited) c.waits++;
    c.waitTotal += waitMs;
    if (waitMs > c.waitMax) c.waitMax = waitMs;
    if (lockChannels.grant.hasSubscribers) {
      lockChannels.grant.publish({ node: this.#self, resource: r.resource, lock: r.lk, token: r.token, waitMs, waited: r.waited });
    }
  }

  #onFailed(r: Request, reason: LockFailure): void {
    this.#counts.failures[reason]++;
    if (lockChannels.fail.hasSubscribers) {
      lockChannels.fail.publish({ node: this.#self, resource: r.resource, lock: r.lk, reason, waitMs: monotonicNow() - r.startedAt });
    }
  }

  #fail(resource: unknown, lk: string, reason: LockFailure, detail: string): LockNotAcquiredError {
    this.#counts.failures[reason]++;
    if (lockChannels.fail.hasSubscribers) {
      lockChannels.fail.publish({ node: this.#self, resource, lock: lk, reason, waitMs: 0 });
    }
    return new LockNotAcquiredError(resource, reason, detail);
  }

  // Messages to self skip the mailbox and the codec but not the order: one FIFO, drained in a
  // microtask. A lock whose coordinator is this node can be taken and released without any
  // I/O, so `while (...) await trans(...)` would otherwise run in microtasks forever and
  // starve timers and sockets (a peer's requests included): after SELF_BUDGET messages in
  // one turn of the event loop, the rest wait for the next turn (setImmediate).
  #send = (node: string, msg: LockMsg): void => {
    if (node !== this.#self) {
      // Messages to one node in one tick leave as one cast (a release and the next acquire,
      // a run's grants or releases): one frame, one decode and one mailbox turn on arrival.
      let box = this.#outbox.get(node);
      if (box === undefined) {
        this.#outbox.set(node, (box = []));
        if (this.#outbox.size === 1) process.nextTick(this.#flushOutbox);
      }
      box.push(encodeLockMsg(msg));
      return;
    }
    this.#selfQueue.push(msg);
    if (this.#selfScheduled) return;
    this.#selfScheduled = true;
    if (this.#selfBudget > 0) queueMicrotask(this.#drainSelf);
    else setImmediate(this.#drainSelf);
  };

  // At most MAX_BATCH messages a cast, so a burst (a long run, thousands of `trans` calls in
  // one tick, a mass re-registration) stays well inside the peer's frame limit. A batch the
  // peer cannot take anyway goes message by message; a message that cannot be sent at all
  // is dropped with a warning (as one cast failing must never lose the others, nor throw
  // out of this tick).
  #flushOutbox = (): void => {
    const boxes = this.#outbox;
    this.#outbox = new Map();
    for (const [node, box] of boxes) {
      for (let i = 0; i < box.length; i += MAX_BATCH) {
        const part = box.length <= MAX_BATCH ? box : box.slice(i, i + MAX_BATCH);
        if (part.length === 1 || !this.#castTo(node, encodeLockBatch(part), false)) {
          for (const m of part) this.#castTo(node, m, true);
        }
      }
    }
  };

  #castTo(node: string, wire: unknown, warn: boolean): boolean {
    try {
      this.#system.castPlain({ node, id: this.#actorId }, wire);
      return true;
    } catch (err) {
      if (warn) {
        process.emitWarning(`lock service on ${this.#self}: a message to ${node} could not be sent: ${(err as Error)?.message}`, { code: 'EXPIRABLE_STORE_LOCK_MSG' });
      }
      return false;
    }
  }

  #drainSelf = (): void => {
    this.#selfScheduled = false;
    if (this.#selfBudget <= 0) this.#selfBudget = SELF_BUDGET; // a new turn of the event loop
    else if (this.#selfBudget === SELF_BUDGET) setImmediate(this.#refill);
    const batch = this.#selfQueue;
    this.#selfQueue = [];
    this.#selfBudget -= batch.length;
    for (const msg of batch) this.#dispatch(msg);
  };

  #refill = (): void => {
    this.#selfBudget = SELF_BUDGET;
  };

  #receive(wire: unknown): void {
    const msg = decodeLockMsg(wire);
    if (!msg) {
      process.emitWarning(`lock service on ${this.#self}: dropped a malformed message`, { code: 'EXPIRABLE_STORE_LOCK_MSG' });
      return;
    }
    try {
      this.#dispatch(msg);
    } catch (err) {
      // A bug must not reach the link that delivered the message (it would close it).
      process.emitWarning(`lock service on ${this.#self}: failed on a ${msg.t} message: ${(err as Error)?.stack ?? String(err)}`, { code: 'EXPIRABLE_STORE_LOCK_MSG' });
    }
  }

  #dispatch(msg: LockMsg): void {
    // A message from a node that went down while it waited in the mailbox: its state is gone.
    if (msg.from !== this.#self && !this.#up.has(msg.from)) return;
    switch (msg.t) {
      case 'granted':
        return this.#requester.onGranted(msg);
      case 'refused':
        return this.#requester.onRefused(msg);
      case 'verify':
        return this.#requester.onVerify(msg);
      case 'revoke':
        return this.#requester.onRevoke(msg);
      case 'moved':
        return this.#requester.onMoved(msg);
      case 'inquire': {
        // Another node coordinates `lk` now: hand over what we know and answer to it from now on.
        const own = this.#coordinator.surrender(msg.lk);
        const mine = this.#requester.report(msg.lk, msg.from);
        const parts = recordParts(own ? [...own.holders, ...mine.holders] : mine.holders, own ? [...own.waiters, ...mine.waiters] : mine.waiters);
        const last = Math.max(own?.last ?? 0, this.#tokens.highest);
        parts.forEach(({ holders, waiters }, i) => {
          this.#send(msg.from, { t: 'report', from: this.#self, lk: msg.lk, round: msg.round, holders, waiters, last, more: i < parts.length - 1 });
        });
        return;
      }
      case 'inquireAll': {
        // Another node surveys its view: name every lock this node holds, waits for or keeps
        // leased, in parts, with this node's view and highest token.
        const view = this.#viewKey();
        const lks = this.#requester.lockKeys();
        const last = this.#tokens.highest;
        for (let i = 0; i === 0 || i < lks.length; i += LOCKS_PER_PART) {
          const more = i + LOCKS_PER_PART < lks.length;
          this.#send(msg.from, { t: 'reportAll', from: this.#self, lk: '', round: msg.round, view, lks: lks.slice(i, i + LOCKS_PER_PART), last, more });
        }
        this.#coordinator.surveyedBy(msg.from, msg.view);
        return;
      }
      default:
        return this.#coordinator.handle(msg);
    }
  }

  #onNodeUp = (name: string): void => {
    if (name === this.#self || this.#up.has(name)) return;
    this.#up.add(name);
    this.#seen.add(name);
    this.#viewChanged(name, undefined);
  };

  #onNodeDown = (name: string): void => {
    if (!this.#up.delete(name)) return;
    this.#viewChanged(undefined, name);
    this.#requester.peerDown(name);
  };

  #viewChanged(up: string | undefined, down: string | undefined): void {
    this.#winners = new Map();
    this.#view = undefined;
    // Coordinator first: it drops a down node's holders and grants to the next waiter, and
    // drops the locks another node wins now; then requesters re-register where needed, and
    // the survey of the new view asks every node what it holds and waits for (after the
    // re-registrations, which travel the same links before it).
    this.#coordinator.viewChanged(up, down);
    this.#requester.viewChanged();
    this.#coordinator.survey();
  }

  #viewKey(): string {
    return (this.#view ??= viewKey([this.#self, ...this.#up]));
  }

  #winner(lk: string, set: string[] | null): string | undefined {
    if (set === null) {
      let w = this.#winners.get(lk);
      if (w === undefined) {
        w = rendezvous(lk, [this.#self, ...this.#up]);
        if (this.#winners.size >= WINNERS_CACHE) this.#winners.clear();
        this.#winners.set(lk, w);
      }
      return w;
    }
    return rendezvous(lk, set.filter((n) => n === this.#self || this.#up.has(n)));
  }

  #lockKey(resource: unknown, nodes: readonly string[] | undefined): { lk: string; set: string[] | null } {
    const rk = resourceKey(resource);
    if (nodes === undefined) return { lk: rk, set: null };
    if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every((n) => typeof n === 'string' && n.length > 0)) {
      throw new InvalidOptionError('nodes', 'a non-empty array of node names', nodes);
    }
    const set = [...new Set(nodes)].sort();
    // ESC then '@' starts no resource's text (see ../canonical-key.ts), and the JSON array
    // ends where the resource's text begins: no two (resource, node set) pairs share a key.
    return { lk: `${KEY_ESC}@${JSON.stringify(set)}${rk}`, set };
  }
}

/**
 * The lock key of `resource` used without a node set (what `stats()` shows as its name): its
 * canonical text (../canonical-key.ts). Throws InvalidOptionError naming `resource`.
 */
export function resourceKey(resource: unknown): string {
  return canonicalKey(resource, 'resource', MAX_RESOURCE_TEXT);
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function checkRetries(v: unknown): number | null {
  if (v === undefined || v === Infinity) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new InvalidOptionError('retries', 'a non-negative integer or Infinity', v);
  }
  return v;
}

function checkTimeout(v: unknown): number {
  if (v === undefined) return Infinity;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
    throw new InvalidOptionError('timeout', 'a non-negative number of milliseconds (or Infinity)', v);
  }
  return v;
}

function checkSignal(v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || typeof (v as AbortSignal).aborted !== 'boolean' || typeof (v as AbortSignal).addEventListener !== 'function') {
    throw new InvalidOptionError('signal', 'an AbortSignal', v);
  }
  return v as AbortSignal;
}

function abortDetail(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return `signal aborted: ${reason.message}`;
  return reason === undefined ? 'signal aborted' : `signal aborted: ${String(reason)}`;
}
