// Call timeouts without a timer, or even a clock read, per call.
//
// Calls that share a timeout value share a bucket. Time in a bucket advances in ticks of
// 1/16 of the timeout (at least 1 ms); an entry added during a tick is sealed into a
// generation when that tick ends and expires 16 ticks later. Timeouts are first rounded up
// to a grid of 1/16 of their magnitude so that all-different timeouts share buckets. So a
// call times out after at least its timeout and at most 1/8 of it later (plus timer
// lateness), never early, and the hot path costs one array push. Timeouts beyond
// setTimeout's limit (~24.8 days) get a chained timer each. The tick timer runs only while
// the bucket holds live entries, and keeps the process alive meanwhile: a caller waiting for
// an answer holds the event loop until it has one (a value, a failure or its timeout). Once
// no call is pending, the timer stops at its next tick (at most 1/16 of the timeout later), so
// a process that is done still exits by itself. (Toggling ref/unref per call instead would put
// a native call on every call's hot path.)
// Settled entries are dropped lazily: all at once when the bucket has no live entry left,
// otherwise by compaction when they outnumber the live ones.
import { longTimeout, MAX_TIMEOUT_MS } from '../util/timers.js';

/** Whatever tracks an entry: told once when the entry settles. */
export interface DeadlineTracker {
  settled(): void;
}

/** An entry with a deadline; `expire` runs once if it is still unsettled when its time is up. */
export interface DeadlineEntry {
  settled: boolean;
  bucket: DeadlineTracker | undefined;
  expire(): void;
}

const TICKS = 16;

interface Generation {
  entries: DeadlineEntry[];
  /** Tick count at which this generation expires. */
  expiresAt: number;
}

export class DeadlineBucket implements DeadlineTracker {
  readonly #tickMs: number;
  /** Entries added during the current tick. */
  #current: DeadlineEntry[] = [];
  /** Sealed generations, oldest first. */
  #sealed: Generation[] = [];
  /** Entries held (settled or not) across `#current` and `#sealed`. */
  #stored = 0;
  /** Unsettled entries, maintained through `settled()`. */
  #live = 0;
  #ticks = 0;
  #timer: NodeJS.Timeout | undefined;

  readonly #onIdle: (bucket: DeadlineBucket) => void;

  constructor(timeout: number, onIdle: (bucket: DeadlineBucket) => void = () => {}) {
    this.#onIdle = onIdle;
    this.#tickMs = Math.min(MAX_TIMEOUT_MS, Math.max(1, Math.ceil(timeout / TICKS)));
  }

  add(entry: DeadlineEntry): void {
    entry.bucket = this;
    this.#current.push(entry);
    this.#live++;
    if (++this.#stored > 1024 && this.#stored > 4 * this.#live) this.#compact();
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#tick, this.#tickMs);
    }
  }

  /** Entries held, settled or not (bounded by compaction to about 4x the live ones). */
  get stored(): number {
    return this.#stored;
  }

  /** Called by an entry when it settles. */
  settled(): void {
    if (--this.#live === 0) this.#reset();
  }

  #reset(): void {
    // Nothing live: forget every entry. The timer stops at its next tick, not here, so
    // back-to-back calls do not create and clear a timer each.
    if (this.#stored > 0) {
      // Drop the settled entries now (kept, they would survive into the old generation).
      // Back-to-back calls leave one entry: pop it rather than allocate a new array.
      if (this.#current.length === 1) this.#current.pop();
      else if (this.#current.length > 0) this.#current = [];
      if (this.#sealed.length > 0) this.#sealed = [];
      this.#stored = 0;
    }
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#onIdle(this);
  }

  #compact(): void {
    const keep = (list: DeadlineEntry[]): DeadlineEntry[] => list.filter((e) => !e.settled);
    this.#current = keep(this.#current);
    this.#sealed = this.#sealed.map((g) => ({ entries: keep(g.entries), expiresAt: g.expiresAt }));
    this.#stored = this.#live;
  }

  #tick = (): void => {
    if (this.#live === 0) {
      this.#reset();
      this.#stopTimer();
      return;
    }
    const tick = ++this.#ticks;
    if (this.#current.length > 0) {
      this.#sealed.push({ entries: this.#current, expiresAt: tick + TICKS });
      this.#current = [];
    }
    while (this.#sealed.length > 0 && this.#sealed[0]!.expiresAt <= tick) {
      const gen = this.#sealed.shift()!;
      this.#stored -= gen.entries.length;
      for (const e of gen.entries) if (!e.settled) e.expire();
    }
  };

  /** Stops the timer and forgets the entries (they are left to their owners). */
  dispose(): void {
    this.#live = 0;
    this.#reset();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Timeouts share buckets on a grid of 1/16 of their magnitude (rounded up, so never early):
 * callers that pass computed, all-different timeouts still share a few timers.
 */
export function bucketTimeout(timeout: number): number {
  if (timeout <= 16) return Math.ceil(timeout);
  const grain = 2 ** (Math.floor(Math.log2(timeout)) - 4);
  return Math.ceil(timeout / grain) * grain;
}

/** Beyond this a bucket's ticks would be capped by setTimeout's limit: one long timer per entry instead. */
const LONGEST_BUCKET = MAX_TIMEOUT_MS;

/** One bucket per timeout on the grid; very long timeouts get a timer each. */
export class Deadlines {
  readonly #buckets = new Map<number, DeadlineBucket>();
  /** The bucket used last: nearly every call uses the node's default timeout. */
  #lastTimeout = Number.NaN;
  #lastBucket: DeadlineBucket | undefined = undefined;

  add(entry: DeadlineEntry, timeout: number): void {
    if (timeout === this.#lastTimeout) {
      this.#lastBucket!.add(entry);
      return;
    }
    if (timeout > LONGEST_BUCKET) {
      // Days-long calls are rare: a chained timer each, cancelled when the call settles.
      const timer = longTimeout(
        () => {
          if (!entry.settled) entry.expire();
        },
        timeout,
        { ref: true },
      );
      entry.bucket = { settled: () => timer.cancel() };
      return;
    }
    const key = bucketTimeout(timeout);
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = new DeadlineBucket(key, (idle) => {
        if (this.#buckets.get(key) === idle) this.#buckets.delete(key);
        if (this.#lastBucket === idle) {
          this.#lastBucket = undefined;
          this.#lastTimeout = Number.NaN;
        }
      });
      this.#buckets.set(key, bucket);
    }
    this.#lastTimeout = timeout;
    this.#lastBucket = bucket;
    bucket.add(entry);
  }

  /** Buckets (and so interval timers) in use. */
  get bucketCount(): number {
    return this.#buckets.size;
  }

  dispose(): void {
    for (const b of this.#buckets.values()) b.dispose();
    this.#buckets.clear();
    this.#lastBucket = undefined;
    this.#lastTimeout = Number.NaN;
  }
}
