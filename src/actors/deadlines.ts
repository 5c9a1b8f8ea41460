// Call timeouts without one timer per call.
//
// Calls that share a timeout value share a bucket: their deadlines are in arrival order, so
// one timer armed for the oldest live deadline serves them all. A settled call is not
// removed at once; it is skipped when the head passes it (on each add and when the timer
// fires), and a bucket whose dead entries pile up behind a slow head is compacted. Timers
// are unref'd: a pending call alone does not keep the process alive.
import { monotonicNow } from '../util/clock.js';
import { MAX_TIMEOUT_MS } from '../util/timers.js';

/** An entry with a deadline; `expire` runs once if it is still unsettled when the deadline passes. */
export interface DeadlineEntry {
  settled: boolean;
  deadline: number;
  bucket: DeadlineBucket | undefined;
  expire(): void;
}

export class DeadlineBucket {
  /** Entries in deadline order; `undefined` holes are entries already passed. */
  #items: (DeadlineEntry | undefined)[] = [];
  /** Index of the oldest entry not yet passed. */
  #head = 0;
  /** Unsettled entries, maintained by `settled()`. */
  #live = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #timeout: number;

  constructor(timeout: number) {
    this.#timeout = timeout;
  }

  add(entry: DeadlineEntry): void {
    entry.deadline = monotonicNow() + this.#timeout;
    entry.bucket = this;
    this.#skipSettled();
    const items = this.#items;
    if (items.length - this.#head > 1024 && items.length - this.#head > 4 * this.#live) this.#compact();
    this.#items.push(entry);
    this.#live++;
    if (this.#timer === undefined) this.#arm(entry.deadline);
  }

  /** Called by an entry when it settles, so the bucket knows how many are live. */
  settled(): void {
    this.#live--;
  }

  #skipSettled(): void {
    const items = this.#items;
    let head = this.#head;
    while (head < items.length && items[head]!.settled) items[head++] = undefined;
    if (head === items.length) {
      this.#items = [];
      this.#head = 0;
    } else {
      this.#head = head;
    }
  }

  #compact(): void {
    const kept: DeadlineEntry[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const e = this.#items[i]!;
      if (!e.settled) kept.push(e);
    }
    this.#items = kept;
    this.#head = 0;
  }

  #arm(deadline: number): void {
    const delay = Math.min(Math.max(1, Math.ceil(deadline - monotonicNow())), MAX_TIMEOUT_MS);
    this.#timer = setTimeout(this.#fire, delay);
    this.#timer.unref();
  }

  #fire = (): void => {
    this.#timer = undefined;
    const now = monotonicNow();
    const items = this.#items;
    let head = this.#head;
    while (head < items.length) {
      const e = items[head]!;
      if (!e.settled) {
        if (e.deadline > now) break;
        e.expire();
      }
      items[head++] = undefined;
    }
    this.#head = head;
    this.#skipSettled();
    const next = this.#items[this.#head];
    if (next) this.#arm(next.deadline);
  };

  /** Cancels the timer (entries are left to their owners). */
  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#items = [];
    this.#head = 0;
    this.#live = 0;
  }
}

/** One bucket per distinct timeout value. */
export class Deadlines {
  readonly #buckets = new Map<number, DeadlineBucket>();

  add(entry: DeadlineEntry, timeout: number): void {
    let bucket = this.#buckets.get(timeout);
    if (!bucket) {
      bucket = new DeadlineBucket(timeout);
      this.#buckets.set(timeout, bucket);
    }
    bucket.add(entry);
  }

  dispose(): void {
    for (const b of this.#buckets.values()) b.dispose();
    this.#buckets.clear();
  }
}
