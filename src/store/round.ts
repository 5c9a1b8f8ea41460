// One refresh round of one entry on this node: single flight. Every caller that misses while
// the round is open joins it and gets its one answer. The answer may come before the round's
// own work ends: a value pushed by the node that fetched, or the failure of the fetch that
// node ran for the same round (see `failed` in ./replication.ts). Once answered, the round is
// closed to later callers (a settled promise handed out later could serve a value that has
// expired since) and a round of callers who missed gives up its wait for the lock.
import type { ExpirableResult } from './result.js';

/** Why a round runs: callers missed, or an eager timer fired for the value it holds. */
export type RoundMode = 'miss' | 'eager';

export class Round {
  readonly promise: Promise<ExpirableResult<unknown>>;
  /** True once the callers have their answer. */
  answered = false;
  /** Aborted when a miss round is answered early: its lock request, still queued, is withdrawn. */
  readonly abort: AbortController | undefined;
  #resolve!: (r: ExpirableResult<unknown>) => void;

  constructor(
    readonly mode: RoundMode,
    /** The entry's clear epoch when the round started: callers after a clear do not join it. */
    readonly epoch: number,
    /** Told once, when the round is answered (the entry forgets it then). */
    readonly onAnswered: (round: Round) => void,
  ) {
    this.promise = new Promise((resolve) => (this.#resolve = resolve));
    this.abort = mode === 'miss' ? new AbortController() : undefined;
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
    this.abort?.abort();
  }
}
