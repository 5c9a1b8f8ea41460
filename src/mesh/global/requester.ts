// The requester side of the lock service: this node's own `trans` calls that wait for a lock
// or hold one, each registered with the coordinator of its lock. See ./index.ts for the design.
//
// Invariants:
// - A request is `waiting`, then `holding`, then `done`; it is in the maps until `done`. A
//   request granted as part of a run (./coordinator.ts #grantNext) is `granted` between the
//   two: the coordinator counts it as holder (with its token), but it waits on this node for
//   the requests before it in the run to let go: the coordinator grants nothing while it
//   counts holders, so a run's grant that finds a request of its lock holding or `granted`
//   here is for that same run, and queues behind it. When the holder is done, the next
//   `granted` one that has not given up holds. A run's order is the coordinator's queue order.
// - `coord` is the one node whose grants it accepts: the rendezvous winner when it was sent,
//   or the node whose recovery round asked about it since. A grant from anyone else is
//   declined (told to `coord`), so an old coordinator's late grant can never make a second
//   holder next to the new coordinator's.
// - Every `done` request has told its coordinator (release), so no queue keeps a ghost,
//   except the last holder of a lease (`#leases`): its node keeps the lock, idle, and its
//   coordinator counts it as holder until this node releases it: when the coordinator
//   revokes it, when its reserved tokens run out, when it has idled LEASE_IDLE_MS, when the
//   lock's coordinator changes, or on close. A call that finds an idle lease of its lock
//   (same coordinator, tokens left) takes it with no message, under the lease's request id
//   and with its next reserved token. An idle lease can always be let go: no fn runs under it.
import { randomBytes } from 'node:crypto';
import { LockNotAcquiredError, type LockFailure } from '../../errors.js';
import { deferred, type Deferred } from '../../util/deferred.js';
import { monotonicNow } from '../../util/clock.js';
import type { TokenMemory } from './fencing.js';
import type { DeclineMsg, GrantedMsg, LockMsg, MovedMsg, RefusedMsg, ReleaseMsg, ReqId, RevokeMsg, VerifyMsg, WireHolder, WireWaiter } from './messages.js';

export interface RequesterContext {
  readonly self: string;
  send(node: string, msg: LockMsg): void;
  winner(lk: string, set: string[] | null): string | undefined;
  readonly tokens: TokenMemory;
}

/** How many releases and declines sent to one peer are kept to resend if it goes down. */
const RESEND_MEMORY = 1024;

/** An idle lease is released after this long without a call taking it (ms). */
export const LEASE_IDLE_MS = 1000;

/** Idle leases kept at most; the oldest is released first. */
const MAX_IDLE_LEASES = 1024;

/** A lock this node keeps, idle, under a lease (see the invariants above). */
interface IdleLease {
  req: ReqId;
  /** Nodes its request was registered with (see Request.knownAt). */
  knownAt: string[];
  set: string[] | null;
  coord: string;
  /** The last token used under the lease, and the last one reserved for it. */
  token: number;
  limit: number;
  /** Monotonic ms when it went idle. */
  idleAt: number;
}

export type RequestState = 'waiting' | 'granted' | 'holding' | 'done';

export class Request {
  readonly req: ReqId;
  /** Lock key: canonical resource text, plus the explicit node set if any. */
  readonly lk: string;
  readonly set: string[] | null;
  readonly resource: unknown;
  readonly retries: number | null;
  /** Wall-clock ms of the call (orders waiters after a coordinator change). */
  readonly since: number;
  /** Monotonic ms of the call. */
  readonly startedAt: number;
  state: RequestState = 'waiting';
  /** The node whose grants this request accepts, and to which it reports. */
  coord: string;
  token = 0;
  /** Monotonic ms of the grant. */
  grantedAt = 0;
  /** True when the coordinator queued it behind another holder. */
  waited = false;
  /** Accepts a lease (TransOptions.lease). */
  wantsLease = true;
  /** Granted as a lease: the last token reserved for it (0: no lease). */
  leaseLimit = 0;
  /** Its coordinator revoked the lease (or changed): release when done. */
  revoked = false;
  /**
   * Every node this request was registered with (acquire, re-registration, report, grant).
   * When it is done, those other than `coord` (views that disagreed for a while) are told
   * too (`disown`): any of them may count it as holder, and would forever.
   */
  readonly knownAt: string[] = [];
  /** The highest token of a grant it refused (see onGranted); the grantor may count it. */
  refusedMax = 0;
  readonly granted: Deferred<number> = deferred<number>();
  /** Undoes the timeout timer and the abort listener. */
  cleanup: (() => void) | undefined = undefined;

  constructor(req: ReqId, lk: string, set: string[] | null, resource: unknown, retries: number | null, coord: string) {
    this.req = req;
    this.lk = lk;
    this.set = set;
    this.resource = resource;
    this.retries = retries;
    this.coord = coord;
    this.since = Date.now();
    this.startedAt = monotonicNow();
  }
}

export interface RequesterHooks {
  onGranted(r: Request): void;
  onFailed(r: Request, reason: LockFailure): void;
}

export class Requester {
  readonly #ctx: RequesterContext;
  readonly #hooks: RequesterHooks;
  readonly #byReq = new Map<ReqId, Request>();
  /** lk -> this node's live requests for it (answers recovery rounds). */
  readonly #byLock = new Map<string, Set<Request>>();
  /** Peer -> the latest releases and declines sent to it (see #tell). */
  readonly #sent = new Map<string, (ReleaseMsg | DeclineMsg)[]>();
  /** lk -> the request of a run that holds it here, and the run's `granted` ones after it, in order. */
  readonly #runs = new Map<string, { holder: Request; next: Request[] }>();
  /** lk -> the lease this node keeps idle for it, oldest first. */
  readonly #leases = new Map<string, IdleLease>();
  #leaseTimer: NodeJS.Timeout | undefined = undefined;
  #closed = false;
  /** Calls that took an idle lease (no message). */
  retakes = 0;
  /** Request ids are unique per process incarnation, even for a node restarted under the same name. */
  readonly #prefix: string;
  #seq = 0;

  constructor(ctx: RequesterContext, hooks: RequesterHooks) {
    this.#ctx = ctx;
    this.#hooks = hooks;
    this.#prefix = `${ctx.self}#${randomBytes(4).toString('hex')}.`;
  }

  get waiting(): number {
    let n = 0;
    for (const r of this.#byReq.values()) if (r.state !== 'holding') n++;
    return n;
  }

  get holding(): number {
    return this.#byReq.size - this.waiting;
  }

  /** Locks kept idle under a lease now. */
  get leased(): number {
    return this.#leases.size;
  }

  /**
   * Registers a request with `coord` and returns it; `r.granted` resolves with the token.
   * A call that finds an idle lease of its lock takes it at once: no message, state `holding`.
   */
  start(lk: string, set: string[] | null, resource: unknown, retries: number | null, coord: string, wantsLease = true): Request {
    const idle = this.#leases.get(lk);
    if (idle !== undefined) {
      this.#leases.delete(lk);
      if (wantsLease && idle.coord === coord && idle.token < idle.limit) return this.#retake(idle, lk, resource, retries);
      this.#releaseIdle(lk, idle); // tokens used up (or not wanted): ask the coordinator again
    }
    const r = new Request(this.#prefix + ++this.#seq, lk, set, resource, retries, coord);
    r.wantsLease = wantsLease;
    this.#register(r);
    this.#sendAcquire(r, retries, null);
    return r;
  }

  #retake(idle: IdleLease, lk: string, resource: unknown, retries: number | null): Request {
    const r = new Request(idle.req, lk, idle.set, resource, retries, idle.coord);
    r.leaseLimit = idle.limit;
    r.token = idle.token + 1;
    r.knownAt.push(...idle.knownAt);
    this.#ctx.tokens.bump(r.token);
    this.#register(r);
    this.#runs.set(lk, { holder: r, next: [] });
    this.retakes++;
    this.#hold(r);
    return r;
  }

  #register(r: Request): void {
    this.#byReq.set(r.req, r);
    let same = this.#byLock.get(r.lk);
    if (!same) this.#byLock.set(r.lk, (same = new Set()));
    same.add(r);
  }

  #sendAcquire(r: Request, retries: number | null, held: number | null): void {
    const self = this.#ctx.self;
    this.#known(r, r.coord);
    this.#ctx.send(r.coord, { t: 'acquire', from: self, lk: r.lk, req: r.req, node: self, since: r.since, set: r.set, retries, held, hops: 0, lease: r.wantsLease });
  }

  #releaseIdle(lk: string, idle: IdleLease, to = idle.coord): void {
    this.#tell(to, { t: 'release', from: this.#ctx.self, lk, req: idle.req, set: idle.set, hops: 0 });
  }

  /** Keeps the lock of `r` (a lease's holder, now done) idle for the next call. */
  // No other idle lease of this lock can exist: a call that finds one takes or releases it,
  // and a lease is not kept while a call of ours waits (see #finish).
  #keepIdle(r: Request): void {
    if (this.#leases.size >= MAX_IDLE_LEASES) {
      const [lk, oldest] = this.#leases.entries().next().value as [string, IdleLease];
      this.#leases.delete(lk);
      this.#releaseIdle(lk, oldest);
    }
    this.#leases.set(r.lk, { req: r.req, knownAt: r.knownAt, set: r.set, coord: r.coord, token: r.token, limit: r.leaseLimit, idleAt: monotonicNow() });
    if (this.#leaseTimer === undefined) {
      this.#leaseTimer = setTimeout(this.#expireLeases, LEASE_IDLE_MS);
      this.#leaseTimer.unref();
    }
  }

  // Releases the leases that idled LEASE_IDLE_MS; the map is in idle order.
  #expireLeases = (): void => {
    this.#leaseTimer = undefined;
    const now = monotonicNow();
    for (const [lk, idle] of this.#leases) {
      const left = idle.idleAt + LEASE_IDLE_MS - now;
      if (left > 0) {
        this.#leaseTimer = setTimeout(this.#expireLeases, left + 1);
        this.#leaseTimer.unref();
        return;
      }
      this.#leases.delete(lk);
      this.#releaseIdle(lk, idle);
    }
  };

  /** Stops keeping leases: the idle ones are released now, a busy one when its call settles. */
  close(): void {
    this.#closed = true;
    if (this.#leaseTimer !== undefined) clearTimeout(this.#leaseTimer);
    this.#leaseTimer = undefined;
    for (const [lk, idle] of this.#leases) this.#releaseIdle(lk, idle);
    this.#leases.clear();
  }

  /** Gives up a waiting request: its place in the queue is removed and it rejects with `reason`. */
  giveUp(r: Request, reason: LockFailure, detail?: string): void {
    if (r.state !== 'waiting' && r.state !== 'granted') return;
    this.#finish(r);
    this.#hooks.onFailed(r, reason);
    r.granted.reject(new LockNotAcquiredError(r.resource, reason, detail));
  }

  /**
   * The holder is done: the coordinator hands the lock to the next waiter, or, for a lease
   * not revoked, this node keeps it idle for its next call.
   */
  release(r: Request): void {
    if (r.state !== 'holding') return;
    this.#finish(r, r.token < r.leaseLimit && !r.revoked && !this.#closed);
  }

  #finish(r: Request, keep = false): void {
    r.state = 'done';
    r.cleanup?.();
    r.cleanup = undefined;
    this.#byReq.delete(r.req);
    const same = this.#byLock.get(r.lk);
    if (same) {
      same.delete(r);
      if (same.size === 0) this.#byLock.delete(r.lk);
    }
    // Kept idle only if no call of ours waits for it (the coordinator revokes it for that one).
    if (keep && !this.#byLock.has(r.lk)) this.#keepIdle(r);
    else {
      this.#tell(r.coord, { t: 'release', from: this.#ctx.self, lk: r.lk, req: r.req, set: r.set, hops: 0 });
      for (const n of r.knownAt) {
        if (n !== r.coord) this.#ctx.send(n, { t: 'disown', from: this.#ctx.self, lk: r.lk, req: r.req, token: Math.max(r.token, r.refusedMax) });
      }
    }
    // The lock passes down its run: to the next request granted after this one that has not
    // given up (one that gave up while `granted` is skipped).
    const run = this.#runs.get(r.lk);
    if (run !== undefined && run.holder === r) {
      let n = run.next.shift();
      while (n !== undefined && n.state !== 'granted') n = run.next.shift();
      if (n === undefined) this.#runs.delete(r.lk);
      else {
        run.holder = n;
        this.#hold(n);
      }
    }
  }

  // The coordinator grants a lock.
  onGranted(m: GrantedMsg): void {
    this.#ctx.tokens.bump(m.token + m.lease);
    const r = this.#byReq.get(m.req);
    if (!r) {
      // Given up (or released) while the grant was on its way: hand it straight back.
      this.#tell(m.from, { t: 'release', from: this.#ctx.self, lk: m.lk, req: m.req, set: null, hops: 0 });
      return;
    }
    if (m.from !== r.coord) {
      // A late grant from a coordinator we no longer answer to: the current one may already
      // count someone else as holder. Refuse it and keep waiting at the current one.
      if (r.state === 'waiting') {
        this.#tell(r.coord, { t: 'decline', from: this.#ctx.self, lk: r.lk, req: r.req, token: m.token, set: r.set, hops: 0 });
      }
      // The grantor (which may take itself for the coordinator while views disagree) counts
      // us as holder of that grant: it hears that we are done when we are (disown), not
      // before. Told now, it could drop a holder it learns again meanwhile (a handoff, a
      // re-registration), as tokens of two coordinators are not ordered.
      this.#known(r, m.from);
      if (m.token > r.refusedMax) r.refusedMax = m.token;
      return;
    }
    if (r.state !== 'waiting') return; // a duplicate after a re-registration
    r.token = m.token;
    r.waited = m.waited;
    r.leaseLimit = m.lease > 0 && r.wantsLease ? m.token + m.lease : 0;
    const run = this.#runs.get(r.lk);
    if (m.after !== null && run !== undefined) {
      // Part of the run whose request holds here now: wait for the ones before it to let go.
      r.state = 'granted';
      run.next.push(r);
      return;
    }
    // The first of a run (or a lone grant): it holds now, and a run's later grants queue
    // behind it. (A lone grant while another request holds happens only when a healed
    // partition or a takeover made several holders; each then holds as granted.)
    if (run === undefined) this.#runs.set(r.lk, { holder: r, next: [] });
    this.#hold(r);
  }

  #hold(r: Request): void {
    r.state = 'holding';
    r.grantedAt = monotonicNow();
    r.cleanup?.();
    r.cleanup = undefined;
    this.#hooks.onGranted(r);
    r.granted.resolve(r.token);
  }

  // The coordinator refuses a request made with `retries`.
  onRefused(m: RefusedMsg): void {
    const r = this.#byReq.get(m.req);
    if (!r || r.state !== 'waiting') return;
    // Nothing to release at the coordinator: it already dropped the request.
    r.state = 'done';
    r.cleanup?.();
    r.cleanup = undefined;
    this.#byReq.delete(r.req);
    const same = this.#byLock.get(r.lk);
    same?.delete(r);
    if (same?.size === 0) this.#byLock.delete(r.lk);
    this.#hooks.onFailed(r, 'retries');
    r.granted.reject(
      new LockNotAcquiredError(r.resource, 'retries', `${m.ahead} holder(s) ahead, retries: ${r.retries}`),
    );
  }

  // The coordinator of a lock leased here wants it back for another request.
  onRevoke(m: RevokeMsg): void {
    const r = this.#byReq.get(m.req);
    if (r !== undefined && r.lk === m.lk && r.state === 'holding') {
      // A call runs under the lease: it releases when it settles.
      r.revoked = true;
      this.#ctx.send(m.from, { t: 'busy', from: this.#ctx.self, lk: m.lk, req: m.req });
      return;
    }
    const idle = this.#leases.get(m.lk);
    if (idle !== undefined && idle.req === m.req) {
      this.#leases.delete(m.lk);
      this.#releaseIdle(m.lk, idle);
      return;
    }
    // A live request (one that refused this node's grant, waiting elsewhere) is never
    // released: it tells this node when it is done.
    if (r !== undefined) return;
    // Let go already: released, or ended when the lock's coordinator changed, maybe with the
    // release sent elsewhere. Say it again to the one asking (a second copy does nothing).
    this.#tell(m.from, { t: 'release', from: this.#ctx.self, lk: m.lk, req: m.req, set: null, hops: 0 });
  }

  // The coordinator our requests of `m.lk` answer to does not coordinate it any more: they
  // answer to the winner of our own view from now on (once views agree, everyone's).
  onMoved(m: MovedMsg): void {
    const idle = this.#leases.get(m.lk);
    if (idle !== undefined && idle.coord === m.from) {
      this.#leases.delete(m.lk);
      this.#releaseIdle(m.lk, idle);
    }
    for (const r of this.#byLock.get(m.lk) ?? []) {
      if (r.coord !== m.from) continue;
      const to = this.#ctx.winner(r.lk, r.set);
      if (to === undefined || to === r.coord) continue;
      r.coord = to;
      r.revoked = true; // a lease ends with its coordinator
      this.#sendAcquire(r, null, r.state === 'holding' || r.state === 'granted' ? r.token : null);
    }
  }

  // A coordinator that learned second-hand that we hold a lock asks whether we still do.
  onVerify(m: VerifyMsg): void {
    const r = this.#byReq.get(m.req);
    const self = this.#ctx.self;
    const idle = this.#leases.get(m.lk);
    if (idle !== undefined && idle.req === m.req) {
      // Held idle: still ours if our coordinator asks; anyone else gets it back.
      if (m.from === idle.coord) return;
      this.#leases.delete(m.lk);
      this.#releaseIdle(m.lk, idle);
    }
    if (!r) {
      // Released (or given up) long ago: the record it came from was stale.
      this.#tell(m.from, { t: 'release', from: self, lk: m.lk, req: m.req, set: null, hops: 0 });
    } else if (r.state === 'waiting') {
      // That grant never reached us as our coordinator's: we still wait. (A `granted`
      // request of a run counts as holder, as its coordinator counts it.)
      this.#tell(m.from, { t: 'decline', from: self, lk: m.lk, req: m.req, token: m.token, set: r.set, hops: 0 });
    }
  }

  /** Answers a recovery round of `coordinator`: our holders and waiters of `lk`, which now answer to it. */
  report(lk: string, coordinator: string): { holders: WireHolder[]; waiters: WireWaiter[] } {
    const holders: WireHolder[] = [];
    const waiters: WireWaiter[] = [];
    // A round rebuilds the lock's record from reports, which know no leases: an idle lease
    // ends here (the new record holds no such holder; one learned from an old coordinator's
    // record is verified here, and released), a busy one when its call settles.
    const idle = this.#leases.get(lk);
    if (idle !== undefined) {
      this.#leases.delete(lk);
      // Its old coordinator may live on (a view that disagreed for a while): tell it too.
      if (idle.coord !== coordinator) this.#releaseIdle(lk, idle);
    }
    const same = this.#byLock.get(lk);
    if (same) {
      for (const r of same) {
        r.revoked = true;
        r.coord = coordinator;
        this.#known(r, coordinator);
        if (r.state === 'holding' || r.state === 'granted') holders.push([r.req, this.#ctx.self, r.token, r.since]);
        else waiters.push([r.req, this.#ctx.self, r.since]);
      }
    }
    return { holders, waiters };
  }

  /**
   * The live view changed: each request whose coordinator is no longer its lock's winner
   * re-registers with the winner (a holder with its token, so the winner counts it).
   */
  viewChanged(): void {
    for (const [lk, idle] of [...this.#leases]) {
      const w = this.#ctx.winner(lk, idle.set);
      if (w === idle.coord) continue;
      // Its coordinator changed: let it go (the new one would not know it as a lease).
      this.#leases.delete(lk);
      if (w !== undefined) this.#releaseIdle(lk, idle, w);
    }
    for (const r of [...this.#byReq.values()]) {
      const w = this.#ctx.winner(r.lk, r.set);
      if (w === undefined) {
        // Every node of an explicit node set is down: nobody can grant it.
        this.giveUp(r, 'unreachable', 'no node of its node set is connected');
        continue;
      }
      if (w === r.coord) continue;
      r.coord = w;
      r.revoked = true; // a lease ends with its coordinator
      this.#sendAcquire(r, null, r.state === 'holding' || r.state === 'granted' ? r.token : null);
    }
  }

  // A release or decline sent to a coordinator that then goes down may never have been
  // handled there, and a coordinator that took over in the meantime may count that request
  // as holder (the requester's view can point back at the dead node for a moment, when a
  // node joins before it sees the death). So the latest ones sent to each peer are kept,
  // and resent to the lock's coordinator when that peer goes down; one that arrives twice
  // does nothing the second time.
  #tell(node: string, msg: ReleaseMsg | DeclineMsg): void {
    this.#ctx.send(node, msg);
    if (node === this.#ctx.self) return;
    let list = this.#sent.get(node);
    if (list === undefined) this.#sent.set(node, (list = []));
    list.push(msg);
    if (list.length >= 2 * RESEND_MEMORY) this.#sent.set(node, list.slice(-RESEND_MEMORY));
  }

  /** `node` went down (after the view change): resend to each lock's coordinator what `node` may have lost. */
  peerDown(node: string): void {
    const list = this.#sent.get(node);
    this.#sent.delete(node);
    if (list === undefined) return;
    for (const m of list.slice(-RESEND_MEMORY)) {
      const w = this.#ctx.winner(m.lk, m.set);
      if (w !== undefined && w !== node) this.#ctx.send(w, { ...m, from: this.#ctx.self, hops: 0 });
    }
  }

  #known(r: Request, node: string): void {
    if (!r.knownAt.includes(node)) r.knownAt.push(node);
  }

  /** The locks this node holds, waits for or keeps leased (what it names in a survey). */
  lockKeys(): string[] {
    const lks = new Set(this.#byLock.keys());
    for (const lk of this.#leases.keys()) lks.add(lk);
    return [...lks];
  }

  /** Records kept now, for diagnostics (./diagnostics.ts LockMemory). */
  memory(): { requests: number; leases: number; resends: number } {
    let resends = 0;
    for (const list of this.#sent.values()) resends += list.length;
    return { requests: this.#byReq.size, leases: this.#leases.size, resends };
  }

  /** Every live request, for `close`. */
  all(): Request[] {
    return [...this.#byReq.values()];
  }
}
