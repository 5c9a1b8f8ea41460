// The engine of one expirable on one node: its entries (one, or one per key in an LRU), single
// flight of refreshes (rounds, ./round.ts), the refresh under the lock (local check, peers,
// fetch), clear, state changes, re-entrance, and the counters. What a replica holds and how
// it takes a snapshot is ./replica.ts; the per-entry bookkeeping, ./entry.ts; when eager
// refreshes run and what a failed one does, ./refresh-scheduler.ts. How the processes agree
// is behind the port in ./backend.ts, chosen once when the store is defined
// (./backends/mesh.ts, ./backends/local.ts); this file decides what to do, that one how to say it.
import { LRUCache } from 'lru-cache';
import { ExpirableError, ExpirableSerializationError, fromWire, type ExpirableFailure, type WireError } from '../errors.js';
import { checkEncodable } from '../mesh/codec.js';
import type { ExpirableResult } from './result.js';
import type { Clock } from '../util/clock.js';
import { heldUnder, leaveHolding, runHolding } from '../util/held-context.js';
import { canonicalKey } from '../mesh/canonical-key.js';
import { frozenKey } from './frozen-key.js';
import type { Coordination, PeerSnapshot, UnlessValid } from './backend.js';
import { publish } from './diagnostics.js';
import { Entry, type EntryHandlers } from './entry.js';
import { servable, type Snapshot } from './replica.js';
import { runFetch, TIMED_OUT, withTimeout } from './fetch-runner.js';
import { Round, type RoundMode } from './round.js';
import { reader, readerOrThrow, type Reader, type ReaderOrThrow } from './reader.js';
import { RefreshScheduler } from './refresh-scheduler.js';
import type { ExpirableSpec, ExpirableStats } from './spec.js';

/** What the engine needs from its store. */
export interface EngineContext {
  readonly namespace: string;
  readonly closed: boolean;
  /** The clock every expiry, timeout and timer of the store reads. */
  readonly clock: Clock;
  /** The coordination of an expirable of this scope (one per expirable, chosen at define time). */
  coordination(spec: ExpirableSpec): Coordination;
}

/**
 * How long a miss waits for the holders' answer before it asks for the lock as well (see
 * #pull): far above a round trip on a LAN, far below the peer timeout a silent holder costs.
 */
const PULL_HEDGE_MS = 20;

/** What the async context holds under an entry while it runs under that entry's lock. */
interface HeldGrant {
  held: boolean;
  readonly token: number;
}

type Mode = RoundMode;


export class ExpirableEngine {
  readonly name: string;
  readonly spec: ExpirableSpec;
  /** Counters; `hits` is bumped on the read path, directly. */
  readonly stats: ExpirableStats = { hits: 0, misses: 0, fetches: 0, failures: 0, refreshes: 0, refreshFailures: 0, adopted: 0, replicated: 0, evictions: 0 };
  /** The one replica of an unkeyed expirable. */
  readonly single: Entry | undefined;
  /** Replicas of a keyed expirable by canonical key, least recently used evicted first. */
  readonly #keys: LRUCache<string, Entry> | undefined;
  readonly #ctx: EngineContext;
  readonly #clock: Clock;
  /** `Expirables.name(key?)`: the cached read, built once (see ./reader.ts). */
  readonly read: Reader;
  /** `Expirables.nameOrThrow(key?)`. */
  readonly readOrThrow: ReaderOrThrow;
  /** Eager timers, their backoff, and standing by for a peer's retry (see ./refresh-scheduler.ts). */
  readonly #scheduler: RefreshScheduler;
  /** What the backend tells a held entry, handled here (see Entry: it is its own listener). */
  readonly #heldHandlers: EntryHandlers = {
    put: (e, snap, from) => this.#onPut(e, snap, from),
    refreshFailed: (e, msg) => this.#scheduler.peerFailed(e, msg),
  };
  /** Evicted keys whose refresh still runs: disposed when it ends, unless used again meanwhile. */
  readonly #evicting = new Map<string, Entry>();
  /** How the processes agree on this expirable's entries (see ./backend.ts). */
  readonly #co: Coordination;
  /** Set once the eviction warning was emitted (see #evicted). */
  #warnedEviction = false;

  constructor(ctx: EngineContext, name: string, spec: ExpirableSpec) {
    this.#ctx = ctx;
    this.#clock = ctx.clock;
    this.name = name;
    this.spec = spec;
    this.#co = ctx.coordination(spec);
    this.#scheduler = new RefreshScheduler({
      clock: ctx.clock,
      stats: this.stats,
      beforeExpiry: spec.beforeExpiry,
      get closed() {
        return ctx.closed;
      },
      self: () => this.#co.self(),
      startEager: (e, v) => this.#start(e, 'eager', v),
      tellFailed: (e, msg) => this.#co.refreshFailed(e.resource, msg),
      about: (e, node) => this.#about(e, node),
    });
    if (spec.keyed) {
      this.#keys = new LRUCache<string, Entry>({
        max: spec.maxKeys,
        // An evicted key stops here: its timers, its actor (which leaves the group). One
        // whose refresh is still running stops when that refresh ends; until then a caller
        // of the same key finds it again (one fetch per key and node, even across eviction).
        dispose: (entry, canon, reason) => {
          if (reason !== 'evict' && reason !== 'delete') return;
          if (reason === 'evict' && entry.valid(this.#clock.now())) this.#evicted(entry);
          if (entry.refreshing && !this.#ctx.closed) this.#evictLater(canon, entry);
          else this.#dispose(entry);
        },
      });
    } else {
      this.single = new Entry(undefined, '', this.#resource(''), this.#heldHandlers);
    }
    this.read = reader(this, ctx.clock);
    this.readOrThrow = readerOrThrow(this, ctx.clock);
  }

  #resource(canon: string): string {
    return `expirable-store/${this.#ctx.namespace}/${this.name}/${canon}`;
  }

  /** The replica of `key` on this node, created on first use (keyed: touches its recency). */
  entry(key: unknown): Entry {
    if (!this.#keys) return this.single!;
    const canon = canonicalKey(key);
    let e = this.#keys.get(canon);
    if (!e) {
      e = this.#evicting.get(canon);
      if (e) this.#evicting.delete(canon); // evicted while its refresh runs: back in the cache
      // A frozen copy: the caller may change its object later, the entry's key must not.
      else e = new Entry(frozenKey(key), canon, this.#resource(canon), this.#heldHandlers);
      this.#keys.set(canon, e);
    }
    return e;
  }

  /** The replica with canonical key `canon`, if this node has one (no recency change). */
  peek(canon: string): Entry | undefined {
    return this.#keys ? (this.#keys.peek(canon) ?? this.#evicting.get(canon)) : canon === '' ? this.single : undefined;
  }

  /**
   * A key holding a valid value made room for another: counted, published, and said once per
   * expirable as a process warning (a fleet with more live keys than `maxKeys` refetches them
   * over and over; the bound is meant as a memory cap, not as the cache's working size).
   */
  #evicted(e: Entry): void {
    this.stats.evictions++;
    publish('evict', () => ({ ...this.#about(e, this.#co.self()), maxKeys: this.spec.maxKeys }));
    if (this.#warnedEviction) return;
    this.#warnedEviction = true;
    process.emitWarning(
      `expirable ${this.#ctx.namespace}/${this.name}: a key with a valid value was evicted to stay within maxKeys (${this.spec.maxKeys}); ` +
        'its next call fetches again. Raise maxKeys if this node uses more keys at once (said once per expirable; see stats().evictions).',
      { code: 'EXPIRABLE_STORE_EVICTED' },
    );
  }

  /** Disposes evicted `e` once its refresh has ended, unless a caller took it back meanwhile. */
  #evictLater(canon: string, e: Entry): void {
    this.#evicting.set(canon, e);
    const check = (): void => {
      if (this.#evicting.get(canon) !== e) return;
      if (e.refreshing && !this.#ctx.closed) {
        void e.refreshing.then(check);
        return;
      }
      this.#evicting.delete(canon);
      this.#dispose(e);
    };
    void e.refreshing!.then(check);
  }

  /** The keys this node holds something for. */
  keys(): [string, unknown][] {
    if (!this.#keys) return [];
    const out: [string, unknown][] = [];
    for (const [canon, e] of this.#keys.entries()) if (e.hasValue || e.hasState) out.push([canon, e.key]);
    return out;
  }

  // ---- reads ---------------------------------------------------------------------------

  /** A call that found no valid value here: joins the refresh in flight or starts one. */
  miss(e: Entry): Promise<ExpirableResult<unknown>> {
    this.stats.misses++;
    if (this.#ctx.closed) {
      this.stats.failures++;
      return Promise.resolve({ ok: false, error: this.#error('unavailable', 'the store is closed') });
    }
    // A refresh that started before a clear may bring the cleared value: do not join it.
    const round = e.round;
    if (round && round.epoch === e.epoch) return round.promise;
    return this.#start(e, 'miss', -1);
  }

  /** `miss`, unwrapped for the `…OrThrow` functions. */
  missOrThrow(e: Entry): Promise<unknown> {
    return this.miss(e).then(unwrap);
  }

  /**
   * Runs one refresh round for `e` on this node, shared by every caller until it is answered:
   * as soon as a valid value arrives here (pushed by the node that fetched while this one
   * still waits for the lock), when that node's fetch for the round failed, or with the
   * refresh's own result.
   */
  #start(e: Entry, mode: Mode, armed: number): Promise<ExpirableResult<unknown>> {
    const round = new Round(mode, e.epoch, (r) => {
      if (e.round === r) e.round = undefined;
    });
    e.round = round;
    const done = this.#refresh(e, round, armed).then((r) => {
      if (e.refreshing === done) e.refreshing = undefined;
      round.answer(r);
    });
    e.refreshing = done;
    return round.promise;
  }

  async #refresh(e: Entry, round: Round, armed: number): Promise<ExpirableResult<unknown>> {
    if (round.mode === 'miss' && !e.holding && this.#co.peersHolding(e.resource)) {
      // Others hold it: their answer first, the lock only if none serves (or none answers soon).
      const asked = this.#pull(e, round);
      await withTimeout(() => asked, PULL_HEDGE_MS, this.#clock, true);
      if (round.answered) return round.promise;
    }
    try {
      return await this.#withLock(e, e.canon, e.resource, (token) => this.#underLock(e, round, armed, token), round.signal, {
        // A coordinator that sees a valid value as it grants answers with it instead (no fetch).
        replace: round.mode === 'miss' ? 0 : armed,
        take: (snap, from, ageMs) => this.#tookValid(e, round, armed, { from, snap, since: this.#clock.now() - ageMs }),
      });
    } catch (err) {
      // Answered while waiting for the lock: the request was withdrawn, nobody waits for it.
      if (round.answered) return { ok: false, error: this.#error('unavailable', 'answered before the lock was granted', err) };
      // The lock could not be had (node closed, lock service gone): nothing ran.
      this.stats.failures++;
      return { ok: false, error: this.#error('unavailable', 'could not take the lock of this expirable', err) };
    }
  }

  /**
   * A miss on a node that holds no replica, while other nodes hold one, asks those holders
   * first (one message each, no turn at the lock): a valid value one of them holds answers
   * the callers here at once. The lock is asked for only when no holder has one, or when no
   * answer came within PULL_HEDGE_MS (a holder that went silent costs that, not the peer
   * timeout); an answer that comes after that still answers the callers and withdraws the
   * lock request (the refresh, if granted first, finds the value adopted, or asks every node
   * under the lock). A cold entry has no holders: the lock is asked for at once. Nor does a
   * node that holds a replica ask: every write is pushed to it, the holders have nothing newer.
   * Resolves when the ask is over (never rejects).
   */
  #pull(e: Entry, round: Round): Promise<void> {
    const since = this.#clock.now();
    let took = false;
    const take = (): boolean => (took = !round.answered && round.epoch === e.epoch && !e.disposed && !this.#ctx.closed);
    return this.#askAndAdopt(e, since, (s) => this.#wouldServe(e, s), e.resource, take)
      .then(() => {
        if (took && e.valid(this.#clock.now())) round.answer({ ok: true, value: e.value, expiresAt: e.expiresAt });
      })
      .catch(() => undefined); // nothing learned: the refresh goes on under the lock
  }

  /**
   * Asks the other processes for the newest snapshot of `e` (from `since`; `enough` ends the
   * wait at the first answer that would do, `holdersOf` asks only the entry's holders) and
   * adopts it here if `take` still allows; resolves with what was learned, whose version
   * raises the version of what is written next under the lock (see #nextVersion).
   */
  async #askAndAdopt(
    e: Entry,
    since: number,
    enough?: (s: PeerSnapshot) => boolean,
    holdersOf?: string,
    take: () => boolean = () => true,
  ): Promise<PeerSnapshot | undefined> {
    const best = await this.#co.learn(this.name, e.canon, since, enough, holdersOf);
    if (best && take()) this.#adopt(e, best);
    return best;
  }

  /** True when `s`, from a peer, is newer than what `e` holds and carries a value valid now. */
  #wouldServe(e: Entry, s: PeerSnapshot): boolean {
    return s.snap.v > e.version && servable(s.snap, s.since, this.#clock.now(), this.#clock.wallNow());
  }

  /**
   * Runs `fn` under the entry's lock (its fencing token is the floor of the version of what
   * `fn` writes, see #nextVersion). Re-entrant: a fetch that calls putState, an updateState
   * whose fn reads the expirable, run at once under the lock their context holds. The entry
   * object is the key in the library's one async context (util/held-context.ts).
   */
  async #withLock<T>(
    e: Entry | undefined,
    canon: string,
    resource: string,
    fn: (token: number) => Promise<T>,
    signal?: AbortSignal,
    unlessValid?: UnlessValid<T>,
  ): Promise<T> {
    if (this.#ctx.closed) throw new Error('the store is closed');
    const held = e && (heldUnder(e) as HeldGrant | undefined);
    if (held?.held) return fn(held.token);
    return this.#co.exclusive(
      this.name,
      canon,
      resource,
      e?.version ?? 0,
      async (token) => {
        if (!e) return fn(token);
        const grant: HeldGrant = { held: true, token };
        try {
          return await runHolding(e, grant, fn, token);
        } finally {
          grant.held = false;
          leaveHolding();
        }
      },
      signal,
      unlessValid,
    );
  }

  /** The coordinator answered a refresh with the valid value it holds (see UnlessValid): take it; nothing was fetched. */
  #tookValid(e: Entry, round: Round, armed: number, best: PeerSnapshot): ExpirableResult<unknown> {
    if (this.#ctx.closed) {
      this.stats.failures++;
      return { ok: false, error: this.#error('unavailable', 'the store was closed while waiting for the lock') };
    }
    this.#adopt(e, best);
    if (this.#satisfied(e, round.mode, armed)) return this.#skipped(e, round.mode);
    // Not taken here (this replica knows of something newer, e.g. a clear): the callers get
    // what the coordinator held, valid when it answered.
    return { ok: true, value: best.snap.value, expiresAt: best.snap.exp };
  }

  /**
   * The version of a write to `e` under its lock (token `token`): above the token, above the
   * version this replica holds, and above the newest version the peers asked under this lock
   * answered with (`peerMax`). Tokens alone are not enough: a new lock coordinator whose wall
   * clock is behind the old one's can grant tokens below versions replicas already hold, and
   * a write would then be refused everywhere (a clear ignored, a value never replicated).
   * Above the replica's own version also orders two writes of one grant (a fetch that calls
   * `putState`, an `updateState` whose fn reads the expirable: the same token, re-entrantly).
   */
  #nextVersion(e: Entry, token: number, peerMax = 0): number {
    return Math.max(token, e.version + 1, peerMax + 1);
  }

  /** True when what `e` holds answers this refresh (a miss needs a valid value, an eager refresh a newer one). */
  #satisfied(e: Entry, mode: Mode, armed: number): boolean {
    return e.valid(this.#clock.now()) && (mode === 'miss' || e.version !== armed);
  }

  async #underLock(
    e: Entry,
    round: Round,
    armed: number,
    token: number,
  ): Promise<ExpirableResult<unknown>> {
    const { mode, epoch } = round;
    // 0. The store closed while this refresh waited for the lock: no fetch for a closed store.
    if (this.#ctx.closed) {
      this.stats.failures++;
      return { ok: false, error: this.#error('unavailable', 'the store was closed while waiting for the lock') };
    }
    // Callers who missed were answered while we waited (a push, or the failure of the fetch a
    // peer ran for this round, whose acknowledgement came before its release): nobody waits.
    if (mode === 'miss' && round.answered) return this.#skipped(e, mode);
    // 1. A push may have arrived while we waited for the lock.
    if (this.#satisfied(e, mode, armed)) return this.#skipped(e, mode);
    // 2. A peer may hold a newer value (or state): take it rather than fetch. The first
    //    answer that would do ends the wait; without one, every node's answer counts (the
    //    newest version raises the version of what this refresh writes).
    let early = false;
    let best = await this.#askAndAdopt(e, this.#clock.now(), (s) => (early = this.#wouldServe(e, s)));
    if (best) {
      if (this.#satisfied(e, mode, armed)) return this.#skipped(e, mode);
      if (early) {
        // Taken before every node answered, but not enough after all (it expired since, or a
        // clear overtook it): hear every node before writing.
        best = await this.#askAndAdopt(e, this.#clock.now());
        if (this.#satisfied(e, mode, armed)) return this.#skipped(e, mode);
      }
    }
    const peerMax = best?.snap.v ?? 0;
    // 3. Fetch, unless this is a background refresh and a peer's attempt at this very value
    //    failed since our timer fired: that peer retries on its backoff; we stand by.
    const nodeName = this.#co.self();
    if (mode === 'eager' && this.#scheduler.defers(e, armed)) {
      publish('refresh', () => ({ ...this.#about(e, nodeName), phase: 'deferred', version: armed }));
      return { ok: true, value: e.value, expiresAt: e.expiresAt };
    }
    if (this.spec.requireInitialState && !e.hasState) {
      this.stats.failures++;
      const error = this.#error('state_required', 'no state yet: call putState or updateState first');
      publish('fetchFailure', () => ({ ...this.#about(e, nodeName), mode, durationMs: 0, error }));
      if (mode === 'miss') await this.#roundFailed(e, round, error);
      return { ok: false, error };
    }
    this.stats.fetches++;
    publish('fetchStart', () => ({ ...this.#about(e, nodeName), mode }));
    const t0 = this.#clock.now();
    // Callers wait on a miss: its timeout keeps the process alive until they are answered.
    const run = await runFetch(this.name, this.spec.fetch, this.spec.keyed ? [e.key, e.state] : [e.state], this.spec.fetchTimeout, this.#clock, mode === 'miss');
    if (!run.ok) {
      this.stats.failures++;
      publish('fetchFailure', () => ({ ...this.#about(e, nodeName), mode, durationMs: this.#clock.now() - t0, error: run.error }));
      if (mode === 'eager') this.#scheduler.failed(e, armed, run.error);
      else await this.#roundFailed(e, round, run.error);
      return run;
    }
    // A cluster value must read the same on every node: one the codec cannot carry is a
    // failure of this fetch, stored nowhere (the next call fetches again).
    const unfit = this.spec.scope === 'cluster' ? this.#unencodable(run.value, run.hasNextState, run.nextState) : undefined;
    if (unfit) {
      this.stats.failures++;
      publish('fetchFailure', () => ({ ...this.#about(e, nodeName), mode, durationMs: this.#clock.now() - t0, error: unfit }));
      if (mode === 'eager') this.#scheduler.failed(e, armed, unfit);
      else await this.#roundFailed(e, round, unfit);
      return { ok: false, error: unfit };
    }
    const result: ExpirableResult<unknown> = { ok: true, value: run.value, expiresAt: run.expiresAt };
    // Cleared (or evicted, or closed) while the fetch ran: the callers that were waiting get
    // the value, but it is not stored, so it does not come back for later callers.
    if (e.epoch !== epoch || e.disposed || this.#ctx.closed) return result;
    const snap: Snapshot = {
      v: this.#nextVersion(e, token, peerMax),
      has: true,
      value: run.value,
      exp: run.expiresAt,
      ttl: run.ttl,
      hs: run.hasNextState || e.hasState,
      st: run.hasNextState ? run.nextState : e.state,
    };
    e.apply(snap, this.#clock.now(), this.#clock.now(), this.#clock.wallNow()); // newer than anything known here, by construction
    if (mode === 'eager') this.stats.refreshes++;
    publish('fetchEnd', () => ({ ...this.#about(e, nodeName), mode, durationMs: this.#clock.now() - t0, version: snap.v, expiresAt: run.expiresAt }));
    // The push is sent first, before the group join of #afterWrite: it is what answers the
    // callers waiting on the other nodes, and on the mesh the first frame of a tick to a peer is
    // written at once while the rest of the tick's frames (the join, the lock's release when
    // this refresh returns) follow in one write at its end (../mesh/tcp-transport.ts); joining
    // first put the push behind the join, a wake-up later on every peer. Then the callers here
    // are answered, without waiting for any acknowledgement: a silent peer must not hold them,
    // and a short-lived value must not be handed out after it expired.
    const published = this.#published(e, e.snapshot(this.#clock.now()));
    this.#afterWrite(e);
    round.answer(result);
    await published;
    return result;
  }

  /**
   * The fetch of a miss round failed under the lock: answer the callers here at once, and tell
   * every other node before the lock is released, so the callers waiting there get this
   * failure instead of a fetch each (see `failed` in ./replication.ts).
   */
  async #roundFailed(e: Entry, round: Round, error: ExpirableError): Promise<void> {
    round.answer({ ok: false, error });
    await this.#co.roundFailed(this.name, e.canon, error);
  }

  /** A peer's fetch for callers who missed failed: answer the callers of this node's miss round with it. */
  applyRoundFailed(canon: string, wire: WireError, from: string): void {
    const e = this.peek(canon);
    const round = e?.round;
    if (!e || !round || round.mode !== 'miss' || round.epoch !== e.epoch || e.valid(this.#clock.now())) return;
    const error = fromWire(wire);
    round.answer({ ok: false, error: error instanceof ExpirableError ? error : this.#error('fetch_failed', error.message, error) });
    publish('fetchFailure', () => ({ ...this.#about(e, this.#co.self()), mode: 'miss', durationMs: 0, error, from }));
  }

  /** The error for a fetched value (or next state) the wire codec cannot carry, or undefined. */
  #unencodable(value: unknown, hasState: boolean, state: unknown): ExpirableSerializationError | undefined {
    try {
      checkEncodable(value, 'value');
      if (hasState) checkEncodable(state, 'nextState');
      return undefined;
    } catch (err) {
      return new ExpirableSerializationError(this.name, err instanceof Error ? err.message : String(err), { cause: err });
    }
  }

  #skipped(e: Entry, mode: Mode): ExpirableResult<unknown> {
    if (mode === 'eager') publish('refresh', () => ({ ...this.#about(e, this.#co.self()), phase: 'skipped', version: e.version }));
    return { ok: true, value: e.value, expiresAt: e.expiresAt };
  }

  #adopt(e: Entry, best: PeerSnapshot): void {
    if (e.disposed) return;
    // The same value, read with more life left than this replica counted: it serves again (no fetch).
    if (e.renew(best.snap, best.since, this.#clock.now(), this.#clock.wallNow())) {
      this.#scheduler.arm(e);
      return;
    }
    if (!e.apply(best.snap, best.since, this.#clock.now(), this.#clock.wallNow())) return;
    if (e.hasValue) this.stats.adopted++;
    publish('replicate', () => ({ ...this.#about(e, this.#co.self()), from: best.from, version: best.snap.v, how: 'adopt' }));
    this.#afterWrite(e);
  }

  /** A peer's push arrived at this entry's actor. */
  #onPut(e: Entry, snap: Snapshot, from: string): void {
    const now = this.#clock.now();
    if (e.disposed || this.#ctx.closed || !e.apply(snap, now, now, this.#clock.wallNow())) return;
    // Callers waiting here for the lock get the value now; the refresh, once granted, finds it.
    const round = e.round;
    if (round && round.epoch === e.epoch && e.valid(this.#clock.now())) round.answer({ ok: true, value: e.value, expiresAt: e.expiresAt });
    if (e.hasValue) this.stats.replicated++;
    publish('replicate', () => ({ ...this.#about(e, this.#co.self()), from, version: snap.v, how: 'push' }));
    this.#afterWrite(e);
  }

  /** Publishes what `e` holds; takes the version the coordinator stored it under, if it gives one. */
  async #published(e: Entry, snap: Snapshot): Promise<void> {
    const sentAt = this.#clock.now();
    const stored = await this.#co.publish(this.name, e.canon, e.resource, snap);
    if (e.disposed || this.#ctx.closed || stored === undefined) return;
    if (stored === 'refused') {
      // Fenced by the coordinator (a clear or a newer write won): stop serving what we wrote,
      // unless something newer arrived meanwhile. The version stays, so only newer news applies.
      if (e.version === snap.v && e.hasValue) {
        e.dropValue();
        this.#afterWrite(e);
      }
      publish('refresh', () => ({ ...this.#about(e, this.#co.self()), phase: 'refused', version: snap.v }));
      return;
    }
    if (e.apply(stored, sentAt, this.#clock.now(), this.#clock.wallNow())) this.#afterWrite(e);
  }

  /** After `e` changed: this process is listed among the entry's holders while it holds a value; re-arm its timer. */
  #afterWrite(e: Entry): void {
    if (e.hasValue && !e.holding) {
      e.holding = this.#co.hold(this.name, e.canon, e.resource, e);
    } else if (!e.hasValue && e.holding) {
      this.#leave(e);
    }
    this.#scheduler.arm(e);
  }

  #leave(e: Entry): void {
    const holding = e.holding;
    if (!holding) return;
    e.holding = undefined;
    holding.release();
  }

  // ---- clear -------------------------------------------------------------------------------

  /** Clears one key (or the value of an unkeyed expirable) everywhere it lives in its scope. */
  async clearKey(key: unknown): Promise<void> {
    const canon = this.spec.keyed ? canonicalKey(key) : '';
    await this.#clearCanon(canon);
  }

  /** Clears every key of a keyed expirable (the ones any connected node holds). */
  async clearAllKeys(): Promise<void> {
    if (!this.spec.keyed) return this.#clearCanon('');
    if (this.#ctx.closed) return;
    const generation = await this.#co.clearAll(this.name);
    if (generation !== undefined) return this.applyClearAll(generation);
    const canons = new Set(this.keys().map(([c]) => c));
    if (!this.#ctx.closed) for (const c of (await this.#co.keys(this.name)).keys()) canons.add(c);
    await Promise.all([...canons].map((c) => this.#clearCanon(c)));
  }

  async #clearCanon(canon: string): Promise<void> {
    if (this.#ctx.closed) return;
    const existing = this.peek(canon);
    // A refresh in flight here stores nothing when it ends, and later callers do not join it.
    if (existing) existing.epoch++;
    // Without an await before the lock is asked for: the clear is queued on the lock before
    // any refresh a caller starts after this call.
    await this.#withLock(existing, canon, this.#resource(canon), async (token) => {
      // The clear's version must be above every version a replica holds (see #nextVersion).
      const best = await this.#co.learn(this.name, canon, this.#clock.now());
      const e = this.peek(canon);
      const v = Math.max(token, (e?.version ?? 0) + 1, (best?.snap.v ?? 0) + 1);
      if (e) this.#applyClear(e, v, 'local');
      await this.#co.clear(this.name, canon, v);
    });
  }

  /**
   * A value written elsewhere, offered to this node: taken by an entry that holds a replica or
   * whose callers wait for a refresh (they are answered with it at once).
   */
  applyOffered(canon: string, snap: Snapshot, from: string): void {
    const e = this.peek(canon);
    if (e && (e.round || e.holding)) this.#onPut(e, snap, from);
  }

  /** Every key cleared with version `v` (a generation): drop what is older. */
  applyClearAll(v: number): void {
    if (this.single) this.#applyClear(this.single, v, 'remote');
    if (this.#keys) for (const e of [...this.#keys.values(), ...this.#evicting.values()]) {
      // A refresh in flight stores nothing when it ends.
      e.epoch++;
      this.#applyClear(e, v, 'remote');
    }
  }

  /** A clear (local or from a peer) with version `v`: drop value and state unless newer. */
  applyClear(canon: string, v: number): void {
    const e = this.peek(canon);
    if (e) this.#applyClear(e, v, 'remote');
  }

  #applyClear(e: Entry, v: number, origin: 'local' | 'remote'): void {
    if (!(v > e.version)) return;
    e.clear(v);
    e.eagerIfAny?.cancel();
    this.#leave(e);
    publish('clear', () => ({ ...this.#about(e, this.#co.self()), version: v, origin }));
  }

  // ---- state -------------------------------------------------------------------------------

  /** Replaces the state of `key` with `fn(state)` under the lock, and pushes it to the replicas. */
  async updateState(key: unknown, fn: (state: unknown) => unknown): Promise<void> {
    const e = this.entry(key);
    await this.#withLock(e, e.canon, e.resource, async (token) => {
      const best = await this.#askAndAdopt(e, this.#clock.now());
      const peerMax = best?.snap.v ?? 0;
      // Under the global lock: a fn that never settles would hold every caller of this
      // expirable in the cluster, so it gets the fetch's timeout.
      const next = await withTimeout(() => fn(e.hasState ? e.state : undefined), this.spec.fetchTimeout, this.#clock, true);
      if (next === TIMED_OUT) throw this.#error('timeout', `updateState's fn ran past the ${this.spec.fetchTimeout} ms fetchTimeout; the state is unchanged`);
      if (e.disposed) return;
      const now = this.#clock.now();
      e.apply({ ...e.snapshot(now), v: this.#nextVersion(e, token, peerMax), hs: true, st: next }, now, now, this.#clock.wallNow());
      this.#afterWrite(e);
      await this.#published(e, e.snapshot(this.#clock.now()));
    });
  }

  // ---- misc --------------------------------------------------------------------------------

  /** Names of the nodes holding a replica of `key` now. */
  replicas(key: unknown): string[] {
    const canon = this.spec.keyed ? canonicalKey(key) : '';
    return this.#co.holders(this.name, canon, this.#resource(canon), this.peek(canon)?.hasValue === true);
  }

  /** Stops timers and actors of every replica here. */
  close(): void {
    if (this.single) this.#dispose(this.single);
    this.#keys?.clear();
    for (const e of this.#evicting.values()) this.#dispose(e);
    this.#evicting.clear();
  }

  #dispose(e: Entry): void {
    e.disposed = true;
    // Reads see no value (a closed store answers 'unavailable'; an evicted entry is gone).
    e.dropValue();
    e.eagerIfAny?.cancel();
    this.#leave(e);
  }

  #error(reason: ExpirableFailure, message: string, cause?: unknown): ExpirableError {
    return new ExpirableError(this.name, reason, message, cause === undefined ? undefined : { cause });
  }

  #about(e: Entry, node: string | undefined): { namespace: string; name: string; key: unknown; node: string | undefined } {
    return { namespace: this.#ctx.namespace, name: this.name, key: e.key, node };
  }
}

/** The value of a result, or its error thrown. */
export function unwrap(r: ExpirableResult<unknown>): unknown {
  if (r.ok) return r.value;
  throw r.error;
}

