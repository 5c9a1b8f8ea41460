// A clock for store tests: time moves only when the test says so, and timers armed on it fire
// in order of their due time as it moves. Injected with `defineExpirables(..., { clock })`.
import type { Clock } from '../../src/util/clock.js';
import type { TimerHandle } from '../../src/util/timers.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  ref: boolean;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  #now: number;
  #wall: number;
  #seq = 0;
  #timers: Timer[] = [];

  /** Starts at monotonic `start` and at the real wall time (so `expiresAt` can be built from Date.now()). */
  constructor(start = 1_000, wall = Date.now()) {
    this.#now = start;
    this.#wall = wall - start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#wall + this.#now;
  }

  /** Steps the wall clock by `ms` (an NTP step, a manual change); monotonic time does not move. */
  jumpWall(ms: number): void {
    this.#wall += ms;
  }

  timeout(fn: () => void, delayMs: number, ref = false): TimerHandle {
    const t: Timer = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, ref, cancelled: false };
    if (delayMs !== Infinity) this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  /** Timers armed and not yet fired or cancelled. */
  get pending(): { at: number; ref: boolean }[] {
    return this.#timers.filter((t) => !t.cancelled).map(({ at, ref }) => ({ at, ref }));
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way in order, each at its own
   * due time, and letting the promise jobs a fired timer starts run before the next one fires.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const due = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets pending promise jobs (and the jobs they start) run: a few macrotask turns. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
