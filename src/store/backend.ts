// The port between the store engine and whatever coordinates the replicas of an expirable
// across processes. The engine decides what to do (single flight, the refresh, eager timers,
// clears, state changes, re-entrance); a backend says how the processes agree on it:
//
// - `exclusive`: the right to write an entry (fetch, change its state, clear it), with a
//   fencing token that is the floor of the version of what is written under it. Grants of
//   one entry are serialized across every process the backend reaches. A backend that sees
//   the stored value as it grants (Redis: one script) may answer a refresh with that value
//   instead (`UnlessValid`): no grant, no fetch, one round trip.
// - `learn`: the newest snapshot other processes hold of an entry (a value written elsewhere,
//   taken instead of a fetch; its version raises the next write's version above it).
// - `publish`: what was written under a grant, to every holder of the entry, and to the
//   processes whose callers wait for it (they are answered at once, see `offered`).
// - `roundFailed` / `refreshFailed`: the failure of a fetch, so waiting callers elsewhere get it
//   instead of a fetch each, and other replicas stand by while this one retries.
// - `clear`: drop an entry everywhere (its version above every version known under the grant).
// - `keys`: the keys any reachable process holds, to clear them all.
// - `hold` / `holders`: the processes holding a replica with a value, for `replicas()`.
//
// Failure handling: a grant that cannot be had rejects (the engine answers 'unavailable');
// the other operations skip what they cannot reach, and versions keep every replica from
// taking an older write over a newer one, whatever order messages arrive in.
// A backend is chosen once per expirable when the store is defined (its scope and the store's
// coordination); the engine never asks which one it has.
import type { WireError } from '../errors.js';
import type { Snapshot } from './replica.js';

/** What a backend delivers to the store of this process (calls from other processes). */
export interface StoreInbox {
  /** What this process holds for the entry, valid or not. */
  snapshot(name: string, canon: string): Snapshot | null;
  /** Drop the entry unless it is newer than `version`. */
  cleared(name: string, canon: string, version: number): void;
  /** The keys this process holds something for. */
  keys(name: string): [string, unknown][];
  /** Every key of `name` (undefined: of every expirable) cleared with version `version`. */
  clearedAll(name: string | undefined, version: number): void;
  /** Another process's fetch for the callers of a round failed. */
  roundFailed(name: string, canon: string, error: WireError, from: string): void;
  /** A value written elsewhere, taken only by an entry whose callers wait for a refresh. */
  offered(name: string, canon: string, snap: Snapshot, from: string): void;
}

/** Another replica's background refresh of version `v` failed; it retries in `retryInMs` (undefined: not before expiry). */
export interface RefreshFailed {
  readonly t: 'failed';
  readonly v: number;
  readonly retryInMs: number | undefined;
  readonly failures: number;
  readonly from: string;
}

/** What a replica holding a value hears about its entry. */
export interface ReplicaListener {
  put(snap: Snapshot, from: string): void;
  /** The version the replica holds (a backend that resyncs asks for what is newer). */
  readonly version: number;
  refreshFailed(msg: RefreshFailed): void;
}

/**
 * What `exclusive` may resolve with instead of a grant: a valid value the coordinator holds,
 * whose version is not `replace` (the value an eager refresh replaces; 0: any), handed to
 * `take` (`ageMs`: how long ago, here, its time left was read). `fn` does not run then. A
 * backend that cannot see the value as it grants ignores it and always runs `fn`.
 */
export interface UnlessValid<T> {
  readonly replace: number;
  take(snap: Snapshot, from: string, ageMs: number): T;
}

/** A snapshot another process answered with, and when its time left started counting here. */
export interface PeerSnapshot {
  readonly from: string;
  readonly snap: Snapshot;
  readonly since: number;
}

/** This process's membership among the holders of an entry. */
export interface Holding {
  release(): void;
}

/** What one expirable of one store coordinates through. */
export interface Coordination {
  /** The name of this process as `holders` lists it, once known. */
  self(): string | undefined;
  /**
   * Runs `fn` with the right to write `resource` and its fencing token, or, given
   * `unlessValid`, may answer with `unlessValid.take(...)` instead (see UnlessValid). Rejects
   * when the right cannot be had (closed, coordinator unreachable, `signal` aborted while waiting).
   */
  exclusive<T>(
    name: string,
    canon: string,
    resource: string,
    current: number,
    fn: (token: number) => Promise<T>,
    signal?: AbortSignal,
    unlessValid?: UnlessValid<T>,
  ): Promise<T>;
  /**
   * The newest snapshot other processes hold of the entry (`since`: the store clock now). With
   * `enough`, it may resolve with the first snapshot for which `enough` is true, without
   * waiting for the other processes (then it need not be the newest). With `holdersOf` (the
   * entry's resource), it need ask only the processes holding a replica of it (none: nothing).
   */
  learn(name: string, canon: string, since: number, enough?: (s: PeerSnapshot) => boolean, holdersOf?: string): Promise<PeerSnapshot | undefined>;
  /**
   * Sends what was written to `resource` under a grant to its holders and waiting processes.
   * Resolves with the snapshot as the coordinator stored it, when it gives it a version of its
   * own; with `'refused'` when the coordinator fenced the write (its grant was lost, or a clear or
   * a newer write overtook it): the writer must not keep serving what it wrote.
   */
  publish(name: string, canon: string, resource: string, snap: Snapshot): Promise<Snapshot | 'refused' | undefined>;
  /** The fetch for the callers of a round failed: tell the processes whose callers wait. */
  roundFailed(name: string, canon: string, error: Error): Promise<void>;
  /** This replica's background refresh failed: tell the other holders. */
  refreshFailed(resource: string, msg: RefreshFailed): void;
  /** Drops the entry everywhere older than `version`. */
  clear(name: string, canon: string, version: number): Promise<void>;
  /** The keys other reachable processes hold (canonical text -> key). */
  keys(name: string): Promise<Map<string, unknown>>;
  /**
   * Clears every key of `name` at once through a generation, and resolves with its version;
   * undefined when the coordinator has no generations (the engine then clears key by key).
   */
  clearAll(name: string): Promise<number | undefined>;
  /** Lists this process among the holders of `resource`; listens for its writes (undefined: nothing to join yet). */
  hold(name: string, canon: string, resource: string, listener: ReplicaListener): Holding | undefined;
  /**
   * True when other processes hold a replica of `resource` that `learn` with `holdersOf` would
   * ask (synchronous, from what the backend keeps; false where a miss is answered otherwise,
   * e.g. from the claim on Redis).
   */
  peersHolding(resource: string): boolean;
  /** The processes holding a replica of `resource` now, sorted (synchronous: from what the backend keeps). */
  holders(name: string, canon: string, resource: string, holdsHere: boolean): string[];
  /** Stops what this coordination runs for its store (timers, subscriptions, its connection). */
  close(): Promise<void>;
}
