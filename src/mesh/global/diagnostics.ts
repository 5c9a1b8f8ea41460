// Diagnostics of the lock service: `node:diagnostics_channel` events (payloads are built
// only when a channel has subscribers, so an unobserved lock pays one boolean check per
// event), and `lockMemory`, the records a node's lock service keeps now.
import { channel } from 'node:diagnostics_channel';
import type { GlobalLocks } from './service.js';

/** A `trans` asks for a lock (re-entrant calls do not). */
export interface LockAcquireEvent {
  node: string;
  resource: unknown;
  /** Canonical lock key. */
  lock: string;
  nodes: readonly string[] | undefined;
}

/** A `trans` got its lock. */
export interface LockGrantEvent {
  node: string;
  resource: unknown;
  lock: string;
  token: number;
  /** Milliseconds from the `trans` call to the grant. */
  waitMs: number;
  /** True when it queued behind another holder. */
  waited: boolean;
}

/** A holder let go (its `fn` settled, or the node closed). */
export interface LockReleaseEvent {
  node: string;
  resource: unknown;
  lock: string;
  token: number;
  /** Milliseconds the lock was held. */
  heldMs: number;
}

/** A `trans` gave up before it got the lock. */
export interface LockFailEvent {
  node: string;
  resource: unknown;
  lock: string;
  reason: string;
  waitMs: number;
}

export const lockChannels = {
  acquire: channel('expirable-store:lock:acquire'),
  grant: channel('expirable-store:lock:grant'),
  release: channel('expirable-store:lock:release'),
  fail: channel('expirable-store:lock:fail'),
} as const;

/**
 * What one node's lock service keeps now, counted in records. What grows with the locks
 * ever taken is bounded: an idle lock costs its key and one map slot (`idle`), with no
 * object of its own (`idleValues` counts the values those records share); fencing tokens
 * need no record per lock (one highest token per node, ./fencing.ts).
 */
export interface LockMemory {
  /** Locks coordinated here that are held, waited for or in a recovery round: an entry object each. */
  active: number;
  /** Idle locks coordinated here that keep their entry object (the most recently idle, at most WARM_IDLE). */
  warm: number;
  /** The other idle locks coordinated here, as compact records; with `warm`, at most MAX_IDLE. Idle locks are granted at once on their next request. */
  idle: number;
  /** Objects behind the idle records: one per grantee node and streak, plus one per idle lock of an explicit node set. */
  idleValues: number;
  /** Lock winners of the default node set cached (bounded). */
  winners: number;
  /** Releases and declines this node sent, kept to send again if their coordinator goes down (bounded per peer). */
  resends: number;
  /** This node's live requests (waiting, granted in a run, holding). */
  requests: number;
  /** Locks this node keeps idle under a lease (bounded). */
  leases: number;
  /** Locks whose messages this node forwarded to another coordinator, watched until it goes down (bounded per node). */
  watched: number;
  /** Locks handed on while a recovery round for them ran here (bounded). */
  handedOn: number;
  /** Locks named in this node's last survey, or surrendered to another node's round since: they take a round here (bounded). */
  named: number;
}

const memoryProbes = new WeakMap<GlobalLocks, () => LockMemory>();

/** Called by a lock service (./service.ts) with the function that counts its records. */
export function registerLockMemory(service: GlobalLocks, probe: () => LockMemory): void {
  memoryProbes.set(service, probe);
}

/** The records `locks` (a node's `global`) keeps now. */
export function lockMemory(locks: GlobalLocks): LockMemory {
  return memoryProbes.get(locks)?.() ?? { active: 0, warm: 0, idle: 0, idleValues: 0, winners: 0, resends: 0, requests: 0, leases: 0, watched: 0, handedOn: 0, named: 0 };
}
