// The Redis coordination of cluster-scope expirables: the port of ../../backend.ts over one
// RedisNamespace (./namespace.ts, whose design note describes the scripts, leases, versions
// and resync). How the port's operations map:
// - `exclusive`: the entry's fetch lease (`acquire`: waits while another process holds it,
//   at most one lease), released when `fn` ends unless a commit ended it. What Redis held
//   when the lease was taken is what `learn` answers under it. Given `unlessValid` (a refresh),
//   the claim is in mode 'value': a valid stored value answers in the same script, and no
//   lease is taken (one round trip, no fetch).
// - `publish`: the lease's commit; Redis keeps the engine's version when no other write can
//   have it (normally: the lease's token, so the fetch:end event and every replica's replicate
//   event carry the same version), else gives a fresh one, and publishes the write to every
//   process. The stored snapshot goes back to the engine, so the replica here holds the
//   version every other process holds. A refused commit (fenced) stores nothing.
// - `clear` / `clearAll`: a tombstone / a clear floor (generation) in Redis, published.
// - `hold` / `holders`: the holders sorted set. `holders` is synchronous: it answers from a
//   list kept here, read from Redis on its first call for an entry (opening the namespace if
//   needed), at once after any process's hold or unhold of the entry (published, 'h') or a
//   clear, and every replicaLeaseMs / 3 (a killed process drops out by its lease alone). This
//   process itself is in the answer as soon as it holds a value (and out of it as soon as it
//   holds none); other processes appear after the read (a few round trips).
// - Events: writes of other processes go to the replica's listener (or, for an entry this
//   process does not hold, to callers waiting for it); clears to the store's inbox.
// - Failures, as messages on the namespace's channel (never stored): `roundFailed` tells the
//   processes waiting on this lease, before its release, so their callers get the failure
//   instead of a fetch each; `refreshFailed` tells the other holders, so they stand by as a
//   backup instead of each retrying at once.
// While Redis is unreachable every operation rejects at once (BackendUnavailableError): a
// refresh reads 'unavailable', valid replicas keep being served.
import { toWire, type WireError } from '../../../errors.js';
import type { Coordination, Holding, PeerSnapshot, RefreshFailed, ReplicaListener, StoreInbox, UnlessValid } from '../../backend.js';
import type { Snapshot } from '../../entry.js';
import type { RedisBackend } from './backend.js';
import { encodeValue } from './codec.js';
import type { Lease, RedisNamespace } from './namespace.js';

const idOf = (name: string, canon: string): string => `${name}\0${canon}`;

export class RedisCoordination implements Coordination {
  readonly #backend: RedisBackend;
  readonly #namespace: string;
  readonly #inbox: StoreInbox;
  #ns: Promise<RedisNamespace> | undefined = undefined;
  /** The namespace once open (messages that must leave before the next command use it synchronously). */
  #nsNow: RedisNamespace | undefined = undefined;
  /** Leases held by a grant running here, by entry. */
  readonly #leases = new Map<string, Lease>();
  /** Replicas holding a value here, by entry. */
  readonly #held = new Map<string, { name: string; canon: string; listener: ReplicaListener }>();
  /** Entries held here, by the engine's resource name. */
  readonly #heldByResource = new Map<string, { name: string; canon: string }>();
  /** Holders of the entries `holders` was asked about, as last read from Redis (`reads`: the last read sent). */
  readonly #holders = new Map<string, { name: string; canon: string; list: string[]; reads: number }>();
  #timer: NodeJS.Timeout | undefined = undefined;
  #closed = false;

  /** This process's name among the holders: the node's name where the store has one, else the backend's. */
  readonly #self: string;

  constructor(backend: RedisBackend, namespace: string, inbox: StoreInbox, processName?: string) {
    this.#backend = backend;
    this.#namespace = namespace;
    this.#inbox = inbox;
    this.#self = processName ?? backend.name;
  }

  /** The namespace, opened on first use; a failed open is tried again by the next call. */
  #open(): Promise<RedisNamespace> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    if (this.#ns) return this.#ns;
    const p = this.#backend.open(
      this.#namespace,
      {
        onSnapshot: (name, canon, snap, origin) => this.#onSnapshot(name, canon, snap, origin),
        known: (name, canon, v, origin) => this.#known(name, canon, v, origin),
        onClear: (name, canon, v) => {
          this.#inbox.cleared(name, canon, v);
          this.#refreshSoon(name, canon);
        },
        onClearAll: (name, v) => this.#inbox.clearedAll(name, v),
        onRoundFailed: (name, canon, _token, error, origin) => {
          if (origin !== this.self()) this.#inbox.roundFailed(name, canon, error as WireError, origin);
        },
        onHolders: (name, canon, origin) => {
          // Our own hold or unhold re-reads when its reply comes (see `hold`).
          if (origin !== this.self()) this.#refreshSoon(name, canon);
        },
        onRefreshFailed: (name, canon, v, retryInMs, failures, origin) => {
          if (origin === this.self()) return;
          this.#held.get(idOf(name, canon))?.listener.refreshFailed({ t: 'failed', v, retryInMs, failures, from: origin });
        },
        held: () => [...this.#held.values()].map(({ name, canon, listener }) => [name, canon, listener.version] as const),
      },
      this.#self,
    );
    this.#ns = p;
    p.then(
      (ns) => {
        if (this.#ns === p) this.#nsNow = ns;
        const every = Math.max(50, Math.floor(this.#backend.replicaLeaseMs / 3));
        this.#timer ??= setInterval(() => this.#refreshAll(), every);
        this.#timer.unref?.();
      },
      () => {
        if (this.#ns === p) this.#ns = undefined;
      },
    );
    return p;
  }

  #onSnapshot(name: string, canon: string, snap: Snapshot, origin: string): void {
    // Our own commit, arrived before its reply: the engine takes the stored snapshot from the reply.
    if (origin === this.self() && this.#leases.has(idOf(name, canon))) return;
    const held = this.#held.get(idOf(name, canon));
    if (held) held.listener.put(snap, origin);
    else this.#inbox.offered(name, canon, snap, origin);
  }

  /**
   * A write that would change nothing here, left undecoded: our own commit (its reply brings
   * it; its message usually comes after, when the replica already holds it), or a version the
   * replica already holds (the engine would drop it).
   */
  #known(name: string, canon: string, v: number, origin: string): boolean {
    const id = idOf(name, canon);
    if (origin === this.self() && this.#leases.has(id)) return true;
    const held = this.#held.get(id);
    return held !== undefined && held.listener.version >= v;
  }

  self(): string {
    return this.#self;
  }

  async exclusive<T>(
    name: string,
    canon: string,
    _resource: string,
    _current: number,
    fn: (token: number) => Promise<T>,
    signal?: AbortSignal,
    unlessValid?: UnlessValid<T>,
  ): Promise<T> {
    const ns = await this.#open();
    const mode = unlessValid ? 'value' : 'lease';
    const claim = await ns.acquire(name, canon, { mode, replace: unlessValid?.replace ?? 0, ...(signal ? { signal } : {}) });
    if (claim.kind === 'value') {
      if (!unlessValid) throw new Error('the coordinator answered a lease claim with a value');
      return unlessValid.take(claim.snap, 'redis', performance.now() - claim.sentAt);
    }
    const lease = claim.lease;
    const id = idOf(name, canon);
    this.#leases.set(id, lease);
    try {
      return await fn(lease.token);
    } finally {
      if (this.#leases.get(id) === lease) this.#leases.delete(id);
      if (!lease.ended) await lease.release().catch(() => false);
    }
  }

  learn(name: string, canon: string, since: number): Promise<PeerSnapshot | undefined> {
    const current = this.#leases.get(idOf(name, canon))?.current;
    return Promise.resolve(current ? { from: 'redis', snap: current, since } : undefined);
  }

  async publish(name: string, canon: string, _resource: string, snap: Snapshot): Promise<Snapshot | 'refused'> {
    const lease = this.#leases.get(idOf(name, canon));
    // No lease (it ended: lost to its expiry, or released): Redis would refuse the write.
    if (!lease || lease.ended) return 'refused';
    const r = snap.has ? await lease.commit(snap) : await lease.putState(snap.st, snap.v);
    return r.ok ? r.snap : 'refused';
  }

  async roundFailed(name: string, canon: string, error: Error): Promise<void> {
    const lease = this.#leases.get(idOf(name, canon));
    const ns = this.#nsNow;
    if (!lease || lease.ended || !ns || this.#closed) return;
    try {
      await ns.tellRoundFailed(name, canon, lease.token, encodeValue(toWire(error)));
    } catch {
      // Redis away (or an error that cannot be encoded): the waiters claim again after the
      // release, or when the lease ends, and fetch themselves.
    }
  }

  refreshFailed(resource: string, msg: RefreshFailed): void {
    const held = this.#heldByResource.get(resource);
    const ns = this.#nsNow;
    if (!held || !ns || this.#closed) return;
    try {
      // Sent now, so it leaves before the release of the lease this refresh ran under.
      ns.tellRefreshFailed(held.name, held.canon, msg.v, msg.retryInMs, msg.failures).catch(() => undefined);
    } catch {
      // closed meanwhile: nobody to tell
    }
  }

  async clear(name: string, canon: string): Promise<void> {
    const ns = await this.#open();
    await ns.clear(name, canon);
  }

  /** Keys live in Redis, not in other processes: `clearAll` clears them all at once. */
  keys(): Promise<Map<string, unknown>> {
    return Promise.resolve(new Map());
  }

  async clearAll(name: string): Promise<number> {
    const ns = await this.#open();
    return ns.clearAll(name);
  }

  hold(name: string, canon: string, resource: string, listener: ReplicaListener): Holding {
    const id = idOf(name, canon);
    const entry = { name, canon, listener };
    this.#held.set(id, entry);
    this.#heldByResource.set(resource, { name, canon });
    void this.#open()
      .then((ns) => ns.hold(name, canon))
      .then(() => this.#refreshSoon(name, canon))
      .catch(() => undefined); // Redis away: the resync after it comes back lists us again
    return {
      release: () => {
        if (this.#held.get(id) !== entry) return;
        this.#held.delete(id);
        this.#heldByResource.delete(resource);
        if (!this.#ns || this.#closed) return;
        void this.#ns
          .then((ns) => ns.unhold(name, canon))
          .then(() => this.#refreshSoon(name, canon))
          .catch(() => undefined);
      },
    };
  }

  /**
   * The holders as last read, with this process in or out at once by what it holds here. The
   * first call for an entry starts reading it (and opens the namespace if nothing did yet).
   */
  /** A miss is answered from its claim (one round trip to Redis, see `exclusive`): nobody to ask first. */
  peersHolding(): boolean {
    return false;
  }

  holders(name: string, canon: string, _resource: string, holdsHere: boolean): string[] {
    const id = idOf(name, canon);
    let known = this.#holders.get(id);
    if (!known) {
      this.#holders.set(id, (known = { name, canon, list: [], reads: 0 }));
      this.#refreshSoon(name, canon, true);
    }
    const self = this.self();
    const listed = known.list.includes(self);
    if (holdsHere === listed) return known.list;
    return holdsHere ? [...known.list, self].sort() : known.list.filter((n) => n !== self);
  }

  /** Reads the holders of one entry again, if `holders` was asked about it (`open`: open the namespace for it). */
  #refreshSoon(name: string, canon: string, open = false): void {
    const known = this.#holders.get(idOf(name, canon));
    if (!known || this.#closed || (!this.#ns && !open)) return;
    const read = ++known.reads;
    void this.#open()
      .then((ns) => ns.holders(name, canon))
      .then((list) => {
        // An older read that answers after a newer one does not overwrite it.
        if (known.reads === read) known.list = [...list].sort();
      })
      .catch(() => undefined); // Redis away: the list stays as last read
  }

  #refreshAll(): void {
    for (const { name, canon } of this.#holders.values()) this.#refreshSoon(name, canon);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#held.clear();
    this.#heldByResource.clear();
    this.#nsNow = undefined;
    // The backend's connection is this store's: closing it closes the namespace too.
    await this.#backend.close();
  }
}
