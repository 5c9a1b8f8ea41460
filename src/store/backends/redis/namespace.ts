// One namespace of the Redis backend: the coordination of its expirables through Redis.
//
// Design note
// -----------
// Redis is the one authority. Every operation is one script (./scripts.ts), so each check
// and the write it guards are atomic; what a process holds is a replica that Redis keeps
// up to date by publishing every write, with the value in the message.
//
// What the engine drives (names and canonical keys in, snapshots and events out):
// - `claim(name, canon)`: a valid stored value (returned with its ms left by the Redis
//   clock), or 'busy' with the ms left (and token) of the lease someone else holds, or the fetch lease
//   with a fencing token above every version of the namespace. `acquire` repeats the claim
//   while busy, waiting on pub/sub for the entry's next message, bounded by the lease's ms
//   left: never a tight loop, and a holder that died is waited for at most one lease.
// - Failures are messages, never stored: `roundFailed` tells the processes waiting on a lease
//   that the fetch under it failed (sent while the lease holds, before its release; a waiter
//   takes it only if the lease it waits on has that token, so a late message never answers
//   callers waiting on a later lease), and `refreshFailed` tells the other holders of an entry
//   that a background refresh failed, so they stand by instead of each retrying at once.
// - A lease (`Lease`) is renewed every leaseMs / 3 while held, and ends with `commit` (the
//   value and state), `putState` (the state alone, keeping the value), or `release`.
// - A write is accepted only if no clear and no other lease's write is newer than its
//   token, and no other lease runs; otherwise it is refused ('fenced') and nothing changes.
//   The write keeps the version the writer proposes when no other write can have it (the
//   lease's token, for its first write), else gets a fresh one; the expiry is Redis TIME + ttl (a
//   host's clock cannot make a value live longer), and it is published in the same script.
// - `clear` writes a tombstone with a fresh version: a later commit of a lease taken before
//   it is refused. `clearAll(name)` / `clearAll()` raise the clear floor of one expirable /
//   of the namespace: every entry at or below it reads as cleared, in O(1).
// - Replicas: `hold(name, canon)` registers this process as a holder of the entry (sorted
//   set, score = lease end by the Redis clock), refreshed every replicaLeaseMs / 3 while
//   held; `holders` lists the names whose lease has not ended, so a killed process drops
//   out within one replica lease. A new registration and an `unhold` are published ('h'), so
//   processes that keep a list of the holders read it again at once.
//
// Events: every published write, clear and clear-all reaches `listener` (this process's own
// too: the receiver compares versions). After the link comes back up, or the subscriber
// reconnects, `resync` reads back every entry `listener.held()` lists and hands on what is
// newer than what the process holds: nothing published while it was not listening is
// missed, and after a restart of Redis that lost every key the resync also raises the
// version counter above what the processes hold, so a new value or a clear still wins.
//
// Failures: while Redis is unreachable every operation fails at once with
// BackendUnavailableError (see ./link.ts); a lease whose renewal is refused is marked lost
// (its commit would be refused anyway).
import { BackendUnavailableError } from '../../../errors.js';
import type { Snapshot } from '../../entry.js';
import { decodeValue, encodeValue, parsePublished } from './codec.js';
import { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { CLAIM, CLEAR, CLEAR_ALL, HOLD, HOLDERS, READ, RELEASE, RENEW, TELL, UNHOLD, WRITE } from './scripts.js';

/** What a namespace tells the store it serves. */
export interface BackendListener {
  /** A write (value and/or state) of any process, this one included. Apply it if newer. */
  onSnapshot?(name: string, canon: string, snap: Snapshot, origin: string): void;
  /** One entry cleared with version `v` (drop it if what is held is older). */
  onClear?(name: string, canon: string, v: number, origin: string): void;
  /** Every key of `name` (undefined: every expirable of the namespace) cleared with version `v`. */
  onClearAll?(name: string | undefined, v: number, origin: string): void;
  /** Redis became unreachable (false) or reachable again (true). */
  onAvailability?(up: boolean, cause?: Error): void;
  /**
   * Whether this process wants writes of the entry (it holds or awaits it). A write of an
   * entry it does not want is not decoded (every write of the namespace reaches every
   * process). @default every entry
   */
  interested?(name: string, canon: string): boolean;
  /**
   * True when a write of version `v` by `origin` would change nothing here (this process holds
   * that version or a newer one, or wrote it itself and takes it from the reply): it is not
   * decoded, and `onSnapshot` is not called. @default false
   */
  known?(name: string, canon: string, v: number, origin: string): boolean;
  /** The fetch under lease `token`, which an `acquire` of this process waits on, failed (`error`: what the writer sent). */
  onRoundFailed?(name: string, canon: string, token: number, error: unknown, origin: string): void;
  /** Another process's background refresh of version `v` failed; it retries in `retryInMs` (undefined: not before expiry). */
  onRefreshFailed?(name: string, canon: string, v: number, retryInMs: number | undefined, failures: number, origin: string): void;
  /** A process (`origin`) began or stopped holding the entry. */
  onHolders?(name: string, canon: string, origin: string): void;
  /** The entries this process holds and their versions: read back on every resync. */
  held?(): Iterable<readonly [name: string, canon: string, v: number]>;
}

export type Claim =
  /**
   * A valid value is stored. `snap.ttl` is the ms left by the Redis clock when the script
   * ran: count it from the moment the claim was sent, so transit never lengthens it.
   */
  | { readonly kind: 'value'; readonly snap: Snapshot; /** `performance.now()` when the claim was sent. */ readonly sentAt: number }
  /** Another process holds the lease (fencing token `token`) for `leaseMs` more. */
  | { readonly kind: 'busy'; readonly leaseMs: number; readonly token: number }
  /** The lease is ours: fetch, then commit or release it. */
  | { readonly kind: 'lease'; readonly lease: Lease };

export type WriteResult =
  | { readonly ok: true; readonly snap: Snapshot }
  /** Refused: cleared since the lease was taken, a newer write, or another lease runs. */
  | { readonly ok: false; readonly reason: 'cleared' | 'newer' | 'lease' };

export interface ClaimOptions {
  /** 'value' (default): a valid stored value answers. 'lease': take the lease anyway (state writes). */
  readonly mode?: 'value' | 'lease';
  /** A stored value with this version does not answer (an eager refresh replaces it). */
  readonly replace?: number;
}

/** Settings of the namespace (from the backend's options). */
export interface NamespaceSettings {
  readonly origin: string;
  readonly leaseMs: number;
  readonly replicaLeaseMs: number;
}

type Waiter = () => void;

/** What an `acquire` of an entry has seen: messages (count), the lease it waits on, the last failure told. */
interface Watch {
  n: number;
  users: number;
  /** Token of the lease the last claim found busy. */
  busy: number | undefined;
  /** The last failure message of the entry seen while watched (it may arrive before the claim's reply). */
  failure: { token: number; error: unknown; origin: string } | undefined;
}

export class RedisNamespace {
  readonly keys: RedisKeys;
  readonly #link: RedisLink;
  readonly #s: NamespaceSettings;
  readonly #listener: BackendListener;
  /**
   * Messages seen per entry while an `acquire` of it runs (`name\0canon` -> count, users):
   * a message that arrives between the claim and the wait (it travels on the subscriber's
   * connection, the claim's reply on another) is not waited for a second time.
   */
  readonly #watched = new Map<string, Watch>();
  /** Callers waiting for the next message of an entry: `name\0canon` -> wakers. */
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Entries this process is registered as a holder of: `name\0canon` -> holders key. */
  readonly #holding = new Map<string, string>();
  /** Leases held now (renewed by #renewTimer). */
  readonly #leases = new Set<Lease>();
  #holdTimer: NodeJS.Timeout | undefined = undefined;
  #closed = false;
  /** The resync running now, and whether another is due when it ends. */
  #resyncing: Promise<void> | undefined = undefined;
  #resyncAgain = false;
  readonly #onMessage = (msg: Buffer): void => this.#message(msg);

  constructor(link: RedisLink, namespace: string, settings: NamespaceSettings, listener: BackendListener) {
    this.#link = link;
    this.keys = new RedisKeys(namespace);
    this.#s = settings;
    this.#listener = listener;
  }

  get namespace(): string {
    return this.keys.namespace;
  }

  /** This process's name (as `holders` lists it). */
  get origin(): string {
    return this.#s.origin;
  }

  get leaseMs(): number {
    return this.#s.leaseMs;
  }

  /** Subscribes to the namespace's channel. */
  async open(): Promise<void> {
    await this.#link.subscribe(this.keys.channel, this.#onMessage);
    this.#holdTimer = setInterval(() => void this.#refreshHolds(), Math.max(50, Math.floor(this.#s.replicaLeaseMs / 3)));
    this.#holdTimer.unref?.();
  }

  // ---- claims and leases -------------------------------------------------------------------

  /** One claim: a valid value, 'busy', or the lease. */
  async claim(name: string, canon: string, options: ClaimOptions = {}): Promise<Claim> {
    this.#live();
    const k = this.keys;
    const sentAt = performance.now();
    const r = (await this.#link.eval(
      CLAIM,
      [k.entry(name, canon), k.lease(name, canon), k.seq, k.floors],
      [name, String(this.#s.leaseMs), options.mode ?? 'value', String(options.replace ?? 0)],
    )) as unknown[];
    const kind = String(r[0]);
    if (kind === 'value') return { kind: 'value', snap: toSnapshot(r.slice(1)), sentAt };
    if (kind === 'busy') return { kind: 'busy', leaseMs: Number(r[1]), token: Number(r[2]) };
    const token = Number(r[1]);
    const current = r.length > 2 ? toSnapshot(r.slice(2)) : undefined;
    const lease = new Lease(this, name, canon, token, current);
    this.#leases.add(lease);
    return { kind: 'lease', lease };
  }

  /**
   * Claims until it gets a value or the lease: while another process holds the lease, waits
   * for the entry's next message (a commit, a clear, a release), at most the lease's ms left.
   * `signal` stops the waiting (rejects with its reason).
   */
  async acquire(name: string, canon: string, options: ClaimOptions & { signal?: AbortSignal } = {}): Promise<Exclude<Claim, { kind: 'busy' }>> {
    const id = `${name}\0${canon}`;
    let w = this.#watched.get(id);
    if (!w) this.#watched.set(id, (w = { n: 0, users: 0, busy: undefined, failure: undefined }));
    w.users++;
    try {
      for (;;) {
        options.signal?.throwIfAborted();
        const seen = w.n;
        const c = await this.claim(name, canon, options);
        if (c.kind !== 'busy') return c;
        w.busy = c.token;
        // The failure of that lease's fetch arrived before the claim's reply: hand it on now.
        if (w.failure?.token === c.token) this.#roundFailed(name, canon, w.failure);
        options.signal?.throwIfAborted();
        // The entry changed while the claim was answered: claim again at once.
        if (w.n !== seen) continue;
        // +5 ms: the lease has surely ended on the server when we claim again.
        await this.waitChange(name, canon, c.leaseMs + 5, options.signal);
      }
    } finally {
      if (--w.users === 0) this.#watched.delete(id);
    }
  }

  /** Resolves on the next message about the entry (or of a clear-all covering it), or after `ms`. */
  waitChange(name: string, canon: string, ms: number, signal?: AbortSignal): Promise<void> {
    const id = `${name}\0${canon}`;
    return new Promise<void>((resolve, reject) => {
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const s = this.#waiters.get(id);
        s?.delete(done);
        if (s?.size === 0) this.#waiters.delete(id);
        resolve();
      };
      const onAbort = (): void => {
        done();
        reject(signal!.reason);
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(done);
    });
  }

  /** Extends the lease of `token` by leaseMs; false if it is no longer held by that token. */
  async renew(name: string, canon: string, token: number): Promise<boolean> {
    const r = await this.#link.eval(RENEW, [this.keys.lease(name, canon)], [String(token), String(this.#s.leaseMs)]);
    return Number(r) === 1;
  }

  /** Gives the lease of `token` back without a write; waiters are told. False if it was no longer held. */
  async release(name: string, canon: string, token: number): Promise<boolean> {
    const k = this.keys;
    const r = await this.#link.eval(RELEASE, [k.lease(name, canon)], [String(token), this.#link.pubCmd, k.channel, name, canon, this.#s.origin]);
    return Number(r) === 1;
  }

  /**
   * Stores the value and state of `snap` under the lease of `token`. Its `v` is proposed: Redis
   * keeps it when no other write can have it (the lease's token, for the lease's first write;
   * a version above every one issued), else gives a fresh one; the stored snapshot has the
   * version kept. `snap.ttl` counts from now.
   */
  commit(name: string, canon: string, token: number, snap: Snapshot, options: { release?: boolean } = {}): Promise<WriteResult> {
    const ttl = snap.ttl === Infinity ? '-1' : String(Math.max(0, Math.floor(snap.ttl)));
    const val = snap.has ? encodeValue([snap.value, snap.exp]) : Buffer.alloc(0);
    const st = snap.hs ? encodeValue(snap.st) : Buffer.alloc(0);
    return this.#write(name, canon, token, ['value', snap.has ? '1' : '0', ttl, val, snap.hs ? '1' : '0', st], options.release ?? true, snap.v);
  }

  /** Replaces the state under the lease of `token`, keeping the stored value (`v`: the version proposed, as for `commit`). */
  putState(name: string, canon: string, token: number, state: unknown, options: { release?: boolean; v?: number } = {}): Promise<WriteResult> {
    return this.#write(name, canon, token, ['state', '0', '0', '', '1', encodeValue(state)], options.release ?? false, options.v ?? 0);
  }

  async #write(name: string, canon: string, token: number, fields: (string | Buffer)[], release: boolean, proposed: number): Promise<WriteResult> {
    this.#live();
    const k = this.keys;
    const r = (await this.#link.eval(
      WRITE,
      [k.entry(name, canon), k.lease(name, canon), k.seq, k.floors],
      [name, canon, String(token), ...fields, release ? '1' : '0', this.#link.pubCmd, k.channel, this.#s.origin, String(proposed)],
    )) as unknown[];
    if (String(r[0]) === 'ok') return { ok: true, snap: toSnapshot(r.slice(1)) };
    return { ok: false, reason: String(r[1]) as 'cleared' | 'newer' | 'lease' };
  }

  /**
   * Tells the processes waiting on lease `token` that its fetch failed (`error`: encoded by the
   * caller). Sent at once, in order with what this process sends next (its release); not sent
   * if the lease no longer holds that token. Resolves true if published.
   */
  tellRoundFailed(name: string, canon: string, token: number, error: Buffer): Promise<boolean> {
    this.#live();
    const k = this.keys;
    const p = this.#link.eval(TELL, [k.lease(name, canon)], [this.#link.pubCmd, k.channel, 'x', name, canon, this.#s.origin, String(token), error]);
    return p.then((r) => Number(r) === 1);
  }

  /** Tells the other holders that this process's background refresh of version `v` failed. Sent at once, in order. */
  tellRefreshFailed(name: string, canon: string, v: number, retryInMs: number | undefined, failures: number): Promise<unknown> {
    this.#live();
    const k = this.keys;
    const payload = encodeValue({ r: retryInMs ?? -1, f: failures });
    return this.#link.eval(TELL, [k.lease(name, canon)], [this.#link.pubCmd, k.channel, 'r', name, canon, this.#s.origin, String(v), payload]);
  }

  #roundFailed(name: string, canon: string, f: { token: number; error: unknown; origin: string }): void {
    this.#listener.onRoundFailed?.(name, canon, f.token, f.error, f.origin);
  }

  /** @internal Called by a lease when it ends. */
  leaseEnded(lease: Lease): void {
    this.#leases.delete(lease);
  }

  // ---- clears --------------------------------------------------------------------------------

  /** Clears one entry everywhere; resolves with the clear's version. */
  async clear(name: string, canon: string): Promise<number> {
    this.#live();
    const k = this.keys;
    return Number(await this.#link.eval(CLEAR, [k.entry(name, canon), k.seq], [name, canon, this.#link.pubCmd, k.channel, this.#s.origin]));
  }

  /** Clears every key of `name` (undefined: every expirable of the namespace); resolves with the version. */
  async clearAll(name?: string): Promise<number> {
    this.#live();
    const k = this.keys;
    return Number(await this.#link.eval(CLEAR_ALL, [k.seq, k.floors], [name ?? '*', this.#link.pubCmd, k.channel, this.#s.origin]));
  }

  // ---- replicas ------------------------------------------------------------------------------

  /** Registers this process as a holder of the entry (kept until `unhold`, refreshed meanwhile). */
  async hold(name: string, canon: string): Promise<void> {
    this.#live();
    const key = this.keys.holders(name, canon);
    this.#holding.set(`${name}\0${canon}`, key);
    const k = this.keys;
    await this.#link.eval(HOLD, [key], [this.#s.origin, String(this.#s.replicaLeaseMs), this.#link.pubCmd, k.channel, name, canon]);
  }

  /** Unregisters this process as a holder of the entry. */
  async unhold(name: string, canon: string): Promise<void> {
    const id = `${name}\0${canon}`;
    const key = this.#holding.get(id) ?? this.keys.holders(name, canon);
    this.#holding.delete(id);
    if (!this.#closed) await this.#link.eval(UNHOLD, [key], [this.#s.origin, this.#link.pubCmd, this.keys.channel, name, canon]);
  }

  /** Names of the processes holding the entry now, sorted. */
  async holders(name: string, canon: string): Promise<string[]> {
    this.#live();
    const r = (await this.#link.eval(HOLDERS, [this.keys.holders(name, canon)], [])) as unknown[];
    return r.map(String).sort();
  }

  async #refreshHolds(): Promise<void> {
    if (this.#closed || this.#holding.size === 0 || !this.#link.up) return;
    const keys = [...this.#holding.values()];
    try {
      for (let i = 0; i < keys.length; i += 500) {
        await this.#link.eval(HOLD, keys.slice(i, i + 500), [this.#s.origin, String(this.#s.replicaLeaseMs)]);
      }
    } catch {
      // Redis is away: the registrations lapse, as they should; refreshed again once it is back.
    }
  }

  // ---- messages and resync -------------------------------------------------------------------

  #message(msg: Buffer): void {
    if (this.#closed) return;
    const m = parsePublished(msg);
    if (!m) return;
    const l = this.#listener;
    try {
      if (m.kind === 'w' && l.onSnapshot && !l.known?.(m.name, m.canon, m.v, m.origin) && (l.interested?.(m.name, m.canon) ?? true)) l.onSnapshot(m.name, m.canon, decodeSnapshot(m.v, m.has, m.ttl, m.val, m.hs, m.st), m.origin);
      else if (m.kind === 'c') l.onClear?.(m.name, m.canon, m.v, m.origin);
      else if (m.kind === 'C') l.onClearAll?.(m.name === '*' ? undefined : m.name, m.v, m.origin);
      else if (m.kind === 'x') {
        // Only an acquire waiting on that very lease takes it (now, or when its claim's reply comes).
        const w = this.#watched.get(`${m.name}\0${m.canon}`);
        if (w) {
          w.failure = { token: m.v, error: decodeValue(m.val), origin: m.origin };
          if (w.busy === m.v) this.#roundFailed(m.name, m.canon, w.failure);
        }
      } else if (m.kind === 'h') {
        l.onHolders?.(m.name, m.canon, m.origin);
      } else if (m.kind === 'r' && l.onRefreshFailed && (l.interested?.(m.name, m.canon) ?? true)) {
        const { r, f } = decodeValue(m.val) as { r: number; f: number };
        l.onRefreshFailed(m.name, m.canon, m.v, r < 0 ? undefined : r, f, m.origin);
      }
    } catch {
      // A value this process cannot decode (written by another version of the codec) is
      // skipped here; a claim reads it again from Redis (and fails there, to the caller).
    } finally {
      // A failure is not a change of the entry: waiters go on waiting for the release.
      if (m.kind === 'C') this.#wakeAll(m.name === '*' ? undefined : m.name);
      else if (m.kind !== 'x' && m.kind !== 'r' && m.kind !== 'h') this.#wake(`${m.name}\0${m.canon}`);
    }
  }

  #wake(id: string): void {
    const w = this.#watched.get(id);
    if (w) w.n++;
    const set = this.#waiters.get(id);
    if (set) for (const w of [...set]) w();
  }

  #wakeAll(name: string | undefined): void {
    for (const [id, w] of this.#watched) if (name === undefined || id.startsWith(`${name}\0`)) w.n++;
    for (const [id, set] of [...this.#waiters]) {
      if (name === undefined || id.startsWith(`${name}\0`)) for (const w of [...set]) w();
    }
  }

  /**
   * Reads back every entry the listener holds and hands on what Redis holds that is newer
   * (a snapshot, or a clear). Runs after the link comes back and after the subscriber
   * reconnects; two calls while one runs give one more run after it.
   */
  resync(): Promise<void> {
    if (this.#resyncing) {
      this.#resyncAgain = true;
      return this.#resyncing;
    }
    const run = async (): Promise<void> => {
      do {
        this.#resyncAgain = false;
        await this.#resyncOnce();
      } while (this.#resyncAgain && !this.#closed);
    };
    const p = run().finally(() => {
      if (this.#resyncing === p) this.#resyncing = undefined;
    });
    this.#resyncing = p;
    return p;
  }

  async #resyncOnce(): Promise<void> {
    if (this.#closed) return;
    const held = [...(this.#listener.held?.() ?? [])];
    const k = this.keys;
    // Always at least one call: it raises the version counter (after a restart of Redis).
    for (let i = 0; i === 0 || i < held.length; i += 200) {
      const batch = held.slice(i, i + 200);
      const r = (await this.#link.eval(
        READ,
        [k.seq, k.floors, ...batch.map(([n, c]) => k.entry(n, c))],
        batch.flatMap(([n, , v]) => [n, String(v)]),
      )) as unknown[][];
      batch.forEach(([name, canon], j) => {
        const s = r[j];
        if (!s || s.length === 0 || this.#closed) return;
        const snap = toSnapshot(s);
        if (!snap.has && !snap.hs) this.#listener.onClear?.(name, canon, snap.v, '');
        else this.#listener.onSnapshot?.(name, canon, snap, '');
      });
    }
    // Registrations may have lapsed (or been lost with the keys) while away.
    await this.#refreshHolds();
  }

  /** @internal The link is up again (or down). */
  availability(up: boolean, cause?: Error): void {
    if (this.#closed) return;
    this.#listener.onAvailability?.(up, cause);
    // Waiters claim again now: they fail fast (down) or find what changed (up).
    this.#wakeAll(undefined);
    if (up) {
      for (const lease of this.#leases) lease.renewSoon();
      this.resync().catch(() => undefined);
    }
  }

  #live(): void {
    if (this.#closed) throw new BackendUnavailableError('redis', `namespace ${JSON.stringify(this.namespace)} is closed`);
  }

  /** Stops timers, leases' renewals and the subscription. Leases are released (best effort). */
  async close(): Promise<void> {
    if (this.#closed) return;
    const leases = [...this.#leases];
    await Promise.all(leases.map((l) => l.release().catch(() => false)));
    this.#closed = true;
    clearInterval(this.#holdTimer);
    for (const l of leases) l.stop();
    this.#wakeAll(undefined);
    const holding = [...this.#holding.values()];
    this.#holding.clear();
    if (this.#link.up && holding.length > 0) await this.#link.eval(UNHOLD, holding, [this.#s.origin]).catch(() => undefined);
    await this.#link.unsubscribe(this.keys.channel, this.#onMessage).catch(() => undefined);
  }
}

/**
 * A fetch lease held by this process: renewed every leaseMs / 3 until it ends. `lost` turns
 * true when a renewal finds another token (or none) in its place; the write would be refused.
 */
export class Lease {
  /** What Redis held when the lease was taken (state, and the value if still valid). */
  readonly current: Snapshot | undefined;
  #lost = false;
  #ended = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly ns: RedisNamespace,
    readonly name: string,
    readonly canon: string,
    /** The fencing token: above every version of the namespace when taken. */
    readonly token: number,
    current: Snapshot | undefined,
  ) {
    this.current = current;
    this.#timer = setInterval(() => void this.#renew(), Math.max(20, Math.floor(ns.leaseMs / 3)));
    this.#timer.unref?.();
  }

  get lost(): boolean {
    return this.#lost;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Stores value and state (see RedisNamespace.commit); ends the lease. */
  async commit(snap: Snapshot): Promise<WriteResult> {
    try {
      return await this.ns.commit(this.name, this.canon, this.token, snap, { release: true });
    } finally {
      this.stop();
    }
  }

  /** Replaces the state, keeping the value; the lease goes on (end it with commit or release). */
  putState(state: unknown, v?: number): Promise<WriteResult> {
    return this.ns.putState(this.name, this.canon, this.token, state, { release: false, ...(v === undefined ? {} : { v }) });
  }

  /** Ends the lease without a write; waiters claim again at once. */
  async release(): Promise<boolean> {
    if (this.#ended) return false;
    this.stop();
    return this.ns.release(this.name, this.canon, this.token);
  }

  /** @internal Renews now (the link just came back). */
  renewSoon(): void {
    if (!this.#ended) void this.#renew();
  }

  async #renew(): Promise<void> {
    if (this.#ended) return;
    try {
      if (!(await this.ns.renew(this.name, this.canon, this.token))) {
        this.#lost = true;
        this.stop();
      }
    } catch {
      // Redis away: the next tick tries again; the lease may lapse meanwhile (then the write is refused).
    }
  }

  /** Stops the renewals (the lease lapses on its own unless released). */
  stop(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#timer);
    this.ns.leaseEnded(this);
  }
}

/** A snapshot from a script's reply `[v, has, ttl, val, hs, st]`. */
function toSnapshot(r: unknown[]): Snapshot {
  return decodeSnapshot(Number(r[0]), Number(r[1]) === 1, Number(r[2]), r[3] as Uint8Array, Number(r[4]) === 1, r[5] as Uint8Array);
}

function decodeSnapshot(v: number, has: boolean, ttl: number, val: Uint8Array, hs: boolean, st: Uint8Array): Snapshot {
  let value: unknown = undefined;
  let exp = 0;
  if (has) [value, exp] = decodeValue(val) as [unknown, number];
  return { v, has, value, exp, ttl: !has ? 0 : ttl < 0 ? Infinity : ttl, hs, st: hs ? decodeValue(st) : undefined };
}
