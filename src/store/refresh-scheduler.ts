// The eager refresh of one expirable's replicas on this node: when each replica's timer fires
// (./schedule.ts: the refresh point with its jitter, the backoff of retries), what a failed
// background refresh does (keep serving until expiry, retry with backoff, tell the other
// replicas), and how a replica stands by while a peer retries the same value.
//
// Invariants:
// - An entry has at most one timer, armed for the version it held when armed (`armedVersion`);
//   a timer that fires for a version the entry no longer holds does nothing. Every arming goes
//   through `#set`.
// - A failure is handled once: under the lock when the fetch failed (so the notice to the
//   other replicas leaves before the lock's release), or when the round ends if the lock
//   could not be had.
// - A peer's failure moves only a timer waiting for that very value: this replica becomes a
//   backup, re-armed a while after the peer's retry (never past the value's expiry). A
//   refresh already queued on the lock gives up its turn when granted (`defers`).
import type { ExpirableError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { TimerHandle } from '../util/timers.js';
import type { RefreshFailed } from './backend.js';
import { publish } from './diagnostics.js';
import type { Entry } from './entry.js';
import type { ExpirableResult } from './result.js';
import { eagerDelay, retryDelay } from './schedule.js';
import type { ExpirableStats } from './spec.js';

/** The eager-refresh bookkeeping of one entry (its timer and what it knows of failed refreshes). */
export class EagerState {
  /** The eager-refresh (or retry) timer, armed for `armedVersion`. */
  timer: TimerHandle | undefined = undefined;
  armedVersion = -1;
  /** When this node's eager timer last fired (monotonic ms). */
  firedAt = 0;
  /** The last failed background refresh a peer reported for this value, and when it retries. */
  peerFailure: { readonly v: number; readonly at: number; readonly retryAt: number } | undefined = undefined;
  /** Set when an eager refresh gave its turn to a peer's retry: re-arm a backup at this time. */
  deferredTo: number | undefined = undefined;
  /** Consecutive failed background refreshes of the current value (drives the backoff). */
  failures = 0;

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedVersion = -1;
  }
}

/** What the scheduler needs from its engine. */
export interface SchedulerHost {
  readonly clock: Clock;
  readonly stats: ExpirableStats;
  /** Milliseconds before expiry to refresh (undefined: no eager refresh). */
  readonly beforeExpiry: number | undefined;
  readonly closed: boolean;
  /** This node's name (undefined when it has none to tell peers). */
  self(): string | undefined;
  /** Starts (or joins) a background refresh round of `e` for version `v`. */
  startEager(e: Entry, v: number): Promise<ExpirableResult<unknown>>;
  /** Tells the other replicas of `e` that its refresh failed. */
  tellFailed(e: Entry, msg: RefreshFailed): void;
  /** The fields of a diagnostics message about `e`. */
  about(e: Entry, node: string | undefined): { namespace: string; name: string; key: unknown; node: string | undefined };
}

export class RefreshScheduler {
  readonly #host: SchedulerHost;
  /** Failures of background refreshes already handled under the lock (see `failed`). */
  readonly #failureHandled = new WeakSet<ExpirableError>();

  constructor(host: SchedulerHost) {
    this.#host = host;
  }

  /** Arms the eager refresh of the value `e` holds now (every replica does). */
  arm(e: Entry): void {
    const host = this.#host;
    const before = host.beforeExpiry;
    if (before === undefined || !e.hasValue || e.deadline === Infinity || e.disposed || host.closed) {
      e.eagerIfAny?.cancel();
      return;
    }
    this.#set(e, e.version, eagerDelay(e.deadline - host.clock.now(), before));
  }

  /** The one place a timer is armed: for version `v` of `e`, in `delay` ms. */
  #set(e: Entry, v: number, delay: number): void {
    const s = e.eager;
    s.cancel();
    s.armedVersion = v;
    s.timer = this.#host.clock.timeout(() => this.#onTimer(e, v), delay);
  }

  #onTimer(e: Entry, v: number): void {
    const host = this.#host;
    const s = e.eager;
    if (e.disposed || host.closed || e.version !== v || !e.hasValue) return;
    s.timer = undefined;
    // A refresh already runs for this entry here (callers missed and may have been answered
    // early by a push): look again when it has ended.
    if (e.refreshing) {
      void e.refreshing.then(() => this.#onTimer(e, v));
      return;
    }
    const nodeName = host.self();
    s.firedAt = host.clock.now();
    s.deferredTo = undefined;
    publish('refresh', () => ({ ...host.about(e, nodeName), phase: 'start', version: v, attempt: s.failures + 1 }));
    void host.startEager(e, v).then((r) => {
      if (r.ok) {
        if (e.version !== v) publish('refresh', () => ({ ...host.about(e, nodeName), phase: 'end', version: e.version }));
        else if (s.deferredTo !== undefined) this.#armBackup(e, v, s.deferredTo - host.clock.now());
        return;
      }
      // A failed fetch was handled under the lock already; a lock that could not be had here.
      if (!this.#failureHandled.has(r.error)) this.failed(e, v, r.error);
    });
  }

  /**
   * A background refresh of `v` failed: keep serving the current value until it really
   * expires, arm the retry with backoff, publish, and tell the other replicas. Called under
   * the lock when the fetch failed, so the notice leaves before the release does and a
   * replica granted the lock next already knows to stand by.
   */
  failed(e: Entry, v: number, error: ExpirableError): void {
    const host = this.#host;
    const s = e.eager;
    this.#failureHandled.add(error);
    host.stats.refreshFailures++;
    s.failures++;
    let retryInMs: number | undefined;
    if (e.version === v && e.valid(host.clock.now()) && !e.disposed && !host.closed) {
      const d = retryDelay(s.failures, host.beforeExpiry ?? 0);
      if (host.clock.now() + d < e.deadline) {
        retryInMs = d;
        this.#set(e, v, d);
      }
    }
    const self = host.self();
    publish('refresh', () => ({ ...host.about(e, self), phase: 'failure', version: v, error, retryInMs }));
    if (self !== undefined && e.version === v) {
      host.tellFailed(e, { t: 'failed', v, retryInMs, failures: s.failures, from: self });
    }
  }

  /** A peer's background refresh of `msg.v` failed: let it retry first, stay armed as a backup. */
  peerFailed(e: Entry, msg: RefreshFailed): void {
    const host = this.#host;
    const s = e.eager;
    if (e.disposed || host.closed || e.version !== msg.v || !e.hasValue) return;
    const now = host.clock.now();
    s.failures = Math.max(s.failures, msg.failures);
    s.peerFailure = { v: msg.v, at: now, retryAt: msg.retryInMs === undefined ? Infinity : now + msg.retryInMs };
    // Only a timer waiting for this value moves; a refresh already queued on the lock gives
    // up its turn when it gets there (see `defers`).
    if (s.timer && s.armedVersion === msg.v) this.#armBackup(e, msg.v, msg.retryInMs ?? Infinity);
  }

  /**
   * Under the lock, for the eager refresh of `armed`: true when a peer's attempt at this very
   * value failed since this node's timer fired and the value is still valid. That peer retries
   * on its backoff; this replica stands by and re-arms as a backup when the round ends.
   */
  defers(e: Entry, armed: number): boolean {
    const s = e.eager;
    const pf = s.peerFailure;
    if (!(pf && pf.v === armed && pf.at >= s.firedAt && e.valid(this.#host.clock.now()))) return false;
    s.deferredTo = pf.retryAt;
    return true;
  }

  /** Re-arms the timer for `v` as a backup a while after a peer's retry due in `inMs`. */
  #armBackup(e: Entry, v: number, inMs: number): void {
    const s = e.eager;
    s.deferredTo = undefined;
    s.cancel();
    const delay = Math.max(0, inMs) * (1.5 + 0.5 * Math.random());
    // A peer that will not retry before expiry: neither do we; the next read refreshes.
    if (!(this.#host.clock.now() + delay < e.deadline)) return;
    this.#set(e, v, delay);
  }
}
