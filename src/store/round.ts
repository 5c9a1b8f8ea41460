// One refresh round of one entry on this node: single flight. Every caller that misses while
// the round is open joins it and gets its one answer. The answer may come before the round's
// own work ends: a value pushed by the node that fetched, or the failure of the fetch that
// node ran for the same round (see `failed` in ./replication.ts). Once answered, the round is
// closed to later callers (a settled promise handed out later could serve a value that has
// expired since) and a round of callers who missed gives up its wait for the lock.
import type { ExpirableResult } from './result.js';

/** Why a round runs: callers missed, or an eager timer fired for the value it holds. */
export type RoundMode = 'miss' | 'eager';

/** The reason a round's lock request is withdrawn (one object for every round). */
const ANSWERED = new Error('the round was answered before the lock was granted');

type AbortListener = (this: unknown, ev: unknown) => void;

/**
 * The signal a miss round hands to its lock request: what the lock service reads of an
 * AbortSignal (`aborted`, `reason`, `throwIfAborted`, an 'abort' listener added and removed), without the cost
 * of one: on Node 20 an AbortController and its abort (an Event dispatched, a DOMException
 * made when no reason is given) cost tens of microseconds, once per miss round.
 */
class RoundSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: AbortListener[] | undefined = undefined;

  addEventListener(type: string, fn: AbortListener): void {
    if (type === 'abort') (this.#listeners ??= []).push(fn);
  }

  removeEventListener(type: string, fn: AbortListener): void {
    const at = type === 'abort' ? (this.#listeners?.indexOf(fn) ?? -1) : -1;
    if (at >= 0) this.#listeners!.splice(at, 1);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    // Each listener once ('once' is how it is added), at once as an AbortSignal does; an error
    // in one does not stop the others and is thrown apart, as an EventTarget reports it.
    if (!listeners) return;
    for (const fn of listeners) {
      try {
        fn.call(this, { type: 'abort', target: this });
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

export class Round {
  readonly promise: Promise<ExpirableResult<unknown>>;
  /** True once the callers have their answer. */
  answered = false;
  /** Made when a miss round asks for the lock; aborted when the round is answered early (its lock request, still queued, is withdrawn). */
  #abort: RoundSignal | undefined = undefined;
  #resolve!: (r: ExpirableResult<unknown>) => void;

  constructor(
    readonly mode: RoundMode,
    /** The entry's clear epoch when the round started: callers after a clear do not join it. */
    readonly epoch: number,
    /** Told once, when the round is answered (the entry forgets it then). */
    readonly onAnswered: (round: Round) => void,
  ) {
    this.promise = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** The signal that withdraws this round's lock request when it is answered first (a miss round only). */
  get signal(): AbortSignal | undefined {
    if (this.mode !== 'miss') return undefined;
    this.#abort ??= new RoundSignal();
    if (this.answered) this.#abort.abort(ANSWERED);
    // Read by the lock service as an AbortSignal (see RoundSignal).
    return this.#abort as unknown as AbortSignal;
  }

  /**
   * Answers the callers (once; later answers are ignored). The round is closed and its lock
   * request withdrawn at once; the callers' code runs in a tick queued now. The mesh transport
   * writes the first frame of a tick to a link at once and the others in one write at the end
   * of the tick (in a tick queued when the first was sent): the push sent just before the
   * answer, and the lock's release sent when the refresh returns, are on the wire before the
   * callers run, whatever their code does.
   */
  answer(r: ExpirableResult<unknown>): void {
    if (this.answered) return;
    this.answered = true;
    this.onAnswered(this);
    process.nextTick(this.#resolve, r);
    this.#abort?.abort(ANSWERED);
  }
}
