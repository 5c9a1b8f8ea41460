// What the engine of one expirable runs on (its normalized definition) and what it counts.
// Declared here, below the DSL: `expirable()` builds an ExpirableSpec, `stats()` hands out
// ExpirableStats; the DSL re-exports both and declares neither.

/** The normalized options of one expirable (built and validated by `expirable()`). */
export interface ExpirableSpec {
  readonly fetch: (...args: unknown[]) => unknown;
  readonly scope: 'cluster' | 'local';
  /** Milliseconds before expiry for an eager refresh, or undefined for lazy. */
  readonly beforeExpiry: number | undefined;
  readonly fetchTimeout: number;
  readonly keyed: boolean;
  readonly maxKeys: number;
  readonly requireInitialState: boolean;
}

/** Counters of one expirable on this node. */
export interface ExpirableStats {
  /** Calls answered from a valid local value, with no wait. */
  hits: number;
  /** Calls that found no valid local value and waited for a refresh. */
  misses: number;
  /** Fetch function runs on this node. */
  fetches: number;
  /** Failed fetch runs on this node (throw, fail, invalid result, timeout, state_required). */
  failures: number;
  /** Background (eager) refreshes that produced a new value on this node. */
  refreshes: number;
  /** Background (eager) refreshes that failed on this node (the value was kept). */
  refreshFailures: number;
  /** Values this node took from a peer instead of fetching. */
  adopted: number;
  /** Values pushed to this node by the peer that fetched them. */
  replicated: number;
  /** Keys dropped on this node to stay within `maxKeys` while they still held a valid value. */
  evictions: number;
}
