// A pending call: settled exactly once by a reply, a failure or its deadline. A reply that
// comes after the deadline finds the slot settled and is dropped, so it can never reach a
// later call. Used for local and remote calls alike.
//
// The caller's promise is made in one of two ways:
// - `promise`: a deferred, made on first read (a remote call, a call queued behind others).
// - `answerAfter(run)`: for a call to an idle local actor, the promise of the microtask that
//   runs the actor's mailbox (`run`) and then hands over the outcome the slot holds by then.
//   Two promises (`Promise.resolve` of the slot, and its `then`), no executor and no resolving
//   functions, instead of a deferred plus a second promise to schedule the mailbox, and no hop more: the mailbox
//   still runs in a microtask after the call returns, and the caller resumes in the next one.
//   A handler that has not answered by then (async, or `noreply`) leaves the caller on the
//   deferred, two microtasks later than a deferred alone would (the cost of adopting it).
//   Such a call's deadline is tracked only from then on (`lateDeadline`): no timer can fire
//   before the microtasks queued now have run, so a call answered in that microtask (a
//   synchronous handler, nearly every call) never needs one, and one tracked a few
//   microseconds late still never times out early.
import { CallTimeoutError } from '../errors.js';
import type { From } from './behavior.js';
import type { DeadlineEntry, DeadlineTracker, Deadlines } from './deadlines.js';
import type { ActorRefData } from './ref.js';

export class CallSlot<R = unknown> implements DeadlineEntry, From<R> {
  settled = false;
  bucket: DeadlineTracker | undefined = undefined;
  readonly ref: ActorRefData;
  readonly timeout: number;
  /** The message, while the slot waits in a mailbox. */
  msg: unknown;
  /** Runs once when the slot settles (remote calls drop their pending entry here). */
  onSettle: (() => void) | undefined = undefined;
  /** The mailbox run `answerAfter` waits for, until its microtask runs it. */
  run: (() => void) | undefined = undefined;
  /** Where `answerAfter` tracks the deadline if the run leaves the call unanswered. */
  lateDeadline: Deadlines | undefined = undefined;
  /** The outcome, kept while no deferred exists to take it: the reply, or the error. */
  #outcome: unknown = undefined;
  #failed = false;
  #promise: Promise<R> | undefined = undefined;
  #resolve: ((value: R) => void) | undefined = undefined;
  #reject: ((reason: unknown) => void) | undefined = undefined;

  constructor(ref: ActorRefData, timeout: number, msg?: unknown) {
    this.ref = ref;
    this.timeout = timeout;
    this.msg = msg;
  }

  /** The caller's promise as a deferred, made on first read (settled at once if the slot is). */
  get promise(): Promise<R> {
    if (this.#promise === undefined) {
      if (!this.settled) {
        this.#promise = new Promise<R>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      } else if (this.#failed) {
        this.#promise = Promise.reject(this.#outcome);
      } else {
        this.#promise = Promise.resolve(this.#outcome as R);
      }
      this.#outcome = undefined;
    }
    return this.#promise;
  }

  /**
   * The caller's promise: settles in the microtask that runs `run`, with what the slot holds
   * then. A call still unanswered after `run` gets its deadline in `deadlines` then.
   */
  answerAfter(run: () => void, deadlines: Deadlines | undefined): Promise<R> {
    this.run = run;
    this.lateDeadline = deadlines;
    return Promise.resolve(this as CallSlot).then(runThenAnswer) as Promise<R>;
  }

  reply(value: R): void {
    if (this.settled) return;
    this.settled = true;
    this.bucket?.settled();
    if (this.#resolve !== undefined) this.#resolve(value);
    else this.#outcome = value;
    this.onSettle?.();
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.bucket?.settled();
    if (this.#reject !== undefined) {
      this.#reject(error);
    } else {
      this.#failed = true;
      this.#outcome = error;
    }
    this.onSettle?.();
  }

  expire(): void {
    this.fail(new CallTimeoutError(this.ref, this.timeout));
  }

  /** What `answerAfter`'s promise takes: the outcome if settled (a throw for a failure), else the deferred. */
  take(): R | Promise<R> {
    if (!this.settled || this.#promise !== undefined) return this.promise;
    const outcome = this.#outcome;
    this.#outcome = undefined;
    if (this.#failed) throw outcome;
    return outcome as R;
  }
}

/** The reaction of `answerAfter`: one function for every slot (no closure per call). */
function runThenAnswer(slot: CallSlot): unknown {
  const run = slot.run;
  slot.run = undefined;
  run?.();
  const deadlines = slot.lateDeadline;
  if (deadlines !== undefined) {
    slot.lateDeadline = undefined;
    if (!slot.settled) deadlines.add(slot, slot.timeout);
  }
  return slot.take();
}
