// The history of a chaos run: one JSON object per line, every time in Unix ms (Date.now()
// scale, `performance.timeOrigin + performance.now()` where it is measured: the processes
// share one host, so they share this clock). Written by the harness (faults, process
// lifecycle, upstream fetches, external-store writes) and by each node process (its
// operations, membership views, heap and handles), read back by the checkers.

/** A reading of an expirable (`Expirables.fetch(name, key?)`). */
export interface ReadOp {
  type: 'op';
  op: 'read';
  node: string;
  pid: number;
  name: string;
  key?: string;
  start: number;
  /**
   * null: still pending when the process was asked to drain (a hang), or when the process
   * was gone (killed; `error` says so): it had begun and may have taken effect.
   */
  end: number | null;
  ok: boolean;
  version?: number;
  expiresAt?: number;
  error?: string;
}

/** `Expirables.clear(name)`. */
export interface ClearOp {
  type: 'op';
  op: 'clear';
  node: string;
  pid: number;
  name: string;
  start: number;
  end: number | null;
  ok: boolean;
  error?: string;
}

/** `node.global.trans(resource, fn, { timeout })`; `acquiredAt`..`releasedAt` is while fn ran. */
export interface TransOp {
  type: 'op';
  op: 'trans';
  node: string;
  pid: number;
  resource: string;
  start: number;
  end: number | null;
  ok: boolean;
  token?: number;
  acquiredAt?: number;
  releasedAt?: number;
  error?: string;
}

export type Op = ReadOp | ClearOp | TransOp;

/** One fetch as the upstream saw it (recorded by the harness when it answered). */
export interface FetchEntry {
  type: 'fetch';
  t: number;
  node: string;
  name: string;
  key?: string;
  version: number;
  expiresAt: number;
}

/** One write of a lock holder to the external store, with the store's verdict. */
export interface WriteEntry {
  type: 'write';
  t: number;
  node: string;
  pid: number;
  resource: string;
  token: number;
  /** When the writer's grant began (its trans fn started). */
  grantedAt: number;
  accepted: boolean;
}

export type FaultKind = 'kill' | 'stop' | 'partition' | 'restart' | 'slow';

/**
 * One fault of the nemesis. `nodes` are the nodes it hits (kill, stop, restart, slow); a
 * partition lists the links it cuts (`cut`, pairs of node names). `end` is when it was
 * healed: SIGCONT, the new process up, the links restored, the delay removed.
 */
export interface FaultEntry {
  type: 'fault';
  kind: FaultKind;
  start: number;
  end: number;
  nodes: string[];
  cut?: [string, string][];
  /** Partition shape or slow-link delay, for the report. */
  detail?: string;
}

/** A node process's view of the cluster (`node.nodes()`), recorded at start and on each change. */
export interface ViewEntry {
  type: 'view';
  t: number;
  node: string;
  pid: number;
  nodes: string[];
}

/** A node process's lifecycle, recorded by the harness. */
export interface ProcEntry {
  type: 'proc';
  node: string;
  pid: number;
  /** When its node was started (startNode resolved). */
  up: number;
  /** When it was killed or exited; null if it lived to the end. */
  down: number | null;
}

/** Heap and open handles of a node process, with the workload paused and after a GC. */
export interface HealthEntry {
  type: 'health';
  t: number;
  node: string;
  pid: number;
  phase: 'baseline' | 'final' | 'sample';
  heapUsed: number;
  /** `process.getActiveResourcesInfo()` counted by kind. */
  handles: Record<string, number>;
}

export type Entry = Op | FetchEntry | WriteEntry | FaultEntry | ViewEntry | ProcEntry | HealthEntry;

/** What the checkers need to know of the run's configuration. */
export interface CheckConfig {
  heartbeatInterval: number;
  failureTimeout: number;
  /**
   * Milliseconds after a heal during which the nodes it separated still count as
   * separated (failure detection and reconnection catching up).
   */
  settleMs: number;
  /** Longest an operation of each kind may take (no hang). */
  bounds: { read: number; clear: number; trans: number };
  /** Eager expirables and their `beforeExpiry` (ms); others are lazy. */
  eager: Record<string, number>;
  /** Heap growth per process (bytes, baseline to final) above which it counts as a leak. */
  heapLimitBytes: number;
  /** Heartbeats allowed on top of `failureTimeout` for membership to converge after a heal. */
  convergeHeartbeats: number;
  /**
   * Milliseconds past `expiresAt` a read may still return the value. 0 (the default) is
   * the public contract: never an expired value. See docs/chaos.md for why a run may relax it.
   */
  lateReadMs?: number;
  /** Convergence bound (ms) after a restart under the same name; default: the same as after any heal. */
  restartConvergeMs?: number;
}

export interface Violation {
  /** When it happened (for the timeline). */
  t: number;
  node?: string;
  message: string;
}

export interface CheckResult {
  name: string;
  violations: Violation[];
}
