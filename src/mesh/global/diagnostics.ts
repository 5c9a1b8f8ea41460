// `node:diagnostics_channel` events of the lock service. Payloads are built only when a
// channel has subscribers, so an unobserved lock pays one boolean check per event.
import { channel } from 'node:diagnostics_channel';

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
