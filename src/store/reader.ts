// The cached read of an expirable: the hottest path of the library. A hit is a synchronous
// check of the local replica's monotonic deadline that returns a promise resolved once when
// the value arrived: no mailbox hop, no lock, no allocation. A miss goes to the engine.
//
// Built once per expirable by its engine; the DSL only names the functions. The clock is
// chosen once here too: the system clock is read as `performance.now()` inline, any other
// (a test's fake clock) through its `now()`. A value that never expires (deadline Infinity)
// is served without reading the clock at all: the read is most of a hit's own cost.
import { performance } from 'node:perf_hooks';
import { systemClock, type Clock } from '../util/clock.js';
import type { Entry } from './entry.js';
import type { ExpirableResult } from './result.js';
import type { ExpirableStats } from './spec.js';

/** What a reader needs from its engine. */
export interface ReadSource {
  readonly stats: ExpirableStats;
  /** The replica of an unkeyed expirable; undefined for a keyed one. */
  readonly single: Entry | undefined;
  /** The replica of `key` (keyed), created on first use; throws for a key that cannot be one. */
  entry(key: unknown): Entry;
  miss(e: Entry): Promise<ExpirableResult<unknown>>;
  missOrThrow(e: Entry): Promise<unknown>;
}

export type Reader = (key?: unknown) => Promise<ExpirableResult<unknown>>;
export type ReaderOrThrow = (key?: unknown) => Promise<unknown>;

/**
 * `Expirables.name(key?)`. The four shapes (keyed or not, system clock or not) are written out
 * rather than composed: a shared builder taking the clock or the entry lookup as a callback
 * would put an extra call on every cached read.
 */
export function reader(src: ReadSource, clock: Clock): Reader {
  const stats = src.stats;
  const e = src.single;
  if (clock === systemClock) {
    if (e) {
      return () => {
        if (e.deadline === Infinity || e.deadline > performance.now()) {
          stats.hits++;
          return e.result!;
        }
        return src.miss(e);
      };
    }
    return (key?: unknown) => {
      let k;
      try {
        k = src.entry(key);
      } catch (err) {
        return Promise.reject(err);
      }
      if (k.deadline === Infinity || k.deadline > performance.now()) {
        stats.hits++;
        return k.result!;
      }
      return src.miss(k);
    };
  }
  return (key?: unknown) => {
    let k;
    try {
      k = e ?? src.entry(key);
    } catch (err) {
      return Promise.reject(err);
    }
    if (k.deadline > clock.now()) {
      stats.hits++;
      return k.result!;
    }
    return src.miss(k);
  };
}

/** `Expirables.nameOrThrow(key?)`: the value, or rejects with the error; shaped as `reader`. */
export function readerOrThrow(src: ReadSource, clock: Clock): ReaderOrThrow {
  const stats = src.stats;
  const e = src.single;
  if (clock === systemClock) {
    if (e) {
      return () => {
        if (e.deadline === Infinity || e.deadline > performance.now()) {
          stats.hits++;
          return e.valuePromise!;
        }
        return src.missOrThrow(e);
      };
    }
    return (key?: unknown) => {
      let k;
      try {
        k = src.entry(key);
      } catch (err) {
        return Promise.reject(err);
      }
      if (k.deadline === Infinity || k.deadline > performance.now()) {
        stats.hits++;
        return k.valuePromise!;
      }
      return src.missOrThrow(k);
    };
  }
  return (key?: unknown) => {
    let k;
    try {
      k = e ?? src.entry(key);
    } catch (err) {
      return Promise.reject(err);
    }
    if (k.deadline > clock.now()) {
      stats.hits++;
      return k.valuePromise!;
    }
    return src.missOrThrow(k);
  };
}
