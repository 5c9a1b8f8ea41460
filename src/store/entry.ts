// One entry of one expirable (or of one key of a keyed expirable) on this node: its replica
// (./replica.ts, the value and what the read path touches) and the bookkeeping of its refreshes
// the engine keeps: the round callers join (single flight), the clear epoch, the eager timer's
// state (./refresh-scheduler.ts), its place among the holders, and whether it was disposed.
//
// Invariants:
// - `epoch` grows when `clear` is called on this node; a refresh that started in an older
//   epoch stores nothing when it ends, and later callers do not join it (a cleared value is
//   not brought back). Across nodes the lock orders clears and refreshes, and the clear's
//   version (above every version known under the lock) drops every older value wherever it arrives.
// - The count of failed background refreshes is of the value held: it restarts with every
//   snapshot applied.
import type { Holding, RefreshFailed, ReplicaListener } from './backend.js';
import type { Round } from './round.js';
import { EagerState } from './refresh-scheduler.js';
import { Replica, type Snapshot } from './replica.js';

export { deadlineOf, servable, type Snapshot } from './replica.js';

/** What a held entry hears from its backend, handled by its engine (one object per engine). */
export interface EntryHandlers {
  put(e: Entry, snap: Snapshot, from: string): void;
  refreshFailed(e: Entry, msg: RefreshFailed): void;
}

/** An entry is the listener of its own holding (see ReplicaListener): no object per held key for it. */
export class Entry extends Replica implements ReplicaListener {
  /** Grows when `clear` is called here; refreshes compare it at their end. */
  epoch = 0;
  /**
   * The refresh round callers join here (single flight), until they are answered (early by a
   * push or a peer's failed fetch, or by the refresh itself): see ./round.ts.
   */
  round: Round | undefined = undefined;
  /** Settles when the refresh behind the latest round has ended (it may outlive the answer). */
  refreshing: Promise<void> | undefined = undefined;
  #eager: EagerState | undefined = undefined;
  /**
   * The eager timer and what this node knows of failed background refreshes (see
   * ./refresh-scheduler.ts), made on first use: an entry of an expirable without eager
   * refresh that no peer told of a failure never needs one.
   */
  get eager(): EagerState {
    return (this.#eager ??= new EagerState());
  }

  /** The eager state if one was made (to cancel a timer without making one). */
  get eagerIfAny(): EagerState | undefined {
    return this.#eager;
  }
  /** This process's place among the holders of the entry, while it holds a value (see ./backend.ts). */
  holding: Holding | undefined = undefined;
  /** Set when evicted or closed: late results are not stored. */
  disposed = false;

  constructor(
    /** The key as the caller gave it (undefined for an unkeyed expirable). */
    readonly key: unknown,
    /** Canonical text of the key ('' for an unkeyed expirable). */
    readonly canon: string,
    /** Lock resource and process group of this entry, the same on every node. */
    readonly resource: string,
    /** Its engine's handling of what the backend tells a held entry. */
    readonly handlers: EntryHandlers,
  ) {
    super();
  }

  /** A write pushed by another process (ReplicaListener). */
  put(snap: Snapshot, from: string): void {
    this.handlers.put(this, snap, from);
  }

  /** Another replica's background refresh failed (ReplicaListener). */
  refreshFailed(msg: RefreshFailed): void {
    this.handlers.refreshFailed(this, msg);
  }

  /** Applies `s` if it is newer (see `Replica.apply`); a new value starts its own count of failed refreshes. */
  override apply(s: Snapshot, since: number, now: number, wallNow: number): boolean {
    if (!super.apply(s, since, now, wallNow)) return false;
    if (this.#eager) this.#eager.failures = 0;
    return true;
  }
}
