// One actor: a state, a mailbox, and a loop that hands the handlers one message at a time.
//
// Invariants:
// - Messages are handled in arrival order, one at a time; an async handler holds the
//   mailbox until it settles.
// - The loop runs in a microtask after the enqueue, never inside the sender's stack, and
//   handles every message already queued in one go when handlers are synchronous.
// - A throw (or a rejected promise) from init or a handler crashes the actor: the call being
//   handled fails with that error, every queued or held call fails with ActorDownError, and
//   the monitors hear `{ crashed: error }`.
// - `stop` takes effect after the handler that is running now; queued calls fail with
//   ActorDownError('normal').
import { ActorDownError, type DownReason } from '../errors.js';
import type { Behavior, NoReply, Reply } from './behavior.js';
import { CallSlot } from './call-slot.js';
import type { Deadlines } from './deadlines.js';
import type { ActorRef } from './ref.js';

/** A cast in the mailbox; calls are queued as their CallSlot. */
class CastEnvelope {
  constructor(readonly msg: unknown) {}
}

type Envelope = CallSlot | CastEnvelope;

const RESOLVED = Promise.resolve();

/** Mailbox runs scheduled as microtasks since the event loop last turned. */
let microRuns = 0;
let budgetResetPending = false;
const MICRO_RUNS_PER_TURN = 4096;
const resetBudget = (): void => {
  microRuns = 0;
  budgetResetPending = false;
};
/** One more mailbox run scheduled as a microtask in this turn of the event loop. */
const countMicroRun = (): void => {
  microRuns++;
  if (!budgetResetPending) {
    budgetResetPending = true;
    setImmediate(resetBudget);
  }
};

type Status = 'init' | 'idle' | 'scheduled' | 'running' | 'down';

export type DownListener = (reason: DownReason) => void;

// Handlers of any state type; the actor does not look inside the state.
type AnyBehavior = Behavior<unknown, unknown, unknown, unknown>;

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';

export class Actor {
  readonly ref: ActorRef;
  readonly #behavior: AnyBehavior;
  #state: unknown = undefined;
  /**
   * Mailbox: entries from `#head` to `#tail` are still to be handled; those before `#head`
   * are cleared. A drained mailbox keeps its array (both indexes go back to 0) unless it grew
   * past 1024 entries, so an actor called over and over writes into the same slot rather than
   * allocating an array a call.
   */
  #queue: (Envelope | undefined)[] = [];
  #head = 0;
  #tail = 0;
  #status: Status = 'init';
  /** Set by `stop` while a handler runs; honoured as soon as it settles. */
  #stopReason: DownReason | undefined = undefined;
  /** Calls answered later through `from` (handler returned `noreply`), failed if the actor goes down. */
  #held: Set<CallSlot> | undefined = undefined;
  /** The call whose handler is running now. */
  #current: CallSlot | undefined = undefined;
  #monitors: Set<DownListener> | undefined = undefined;
  #downWaiters: (() => void)[] = [];
  readonly #onDown: (actor: Actor, reason: DownReason) => void;

  constructor(ref: ActorRef, behavior: AnyBehavior, onDown: (actor: Actor, reason: DownReason) => void) {
    this.ref = ref;
    this.#behavior = behavior;
    this.#onDown = onDown;
    this.#start();
  }

  /** Length of the array behind the mailbox, handled slots included (for leak tests). */
  get mailboxArrayLength(): number {
    return this.#queue.length;
  }

  get alive(): boolean {
    return this.#status !== 'down';
  }

  #start(): void {
    let init: unknown;
    try {
      init = this.#behavior.init();
    } catch (err) {
      // Crash after the spawner got its ref, so monitors set right after spawn still hear it.
      queueMicrotask(() => this.#crash(err, undefined));
      return;
    }
    if (isThenable(init)) {
      init.then(
        (state) => {
          if (this.#status === 'down') return;
          this.#state = state;
          this.#status = 'idle';
          this.#afterHandler();
        },
        (err) => this.#crash(err, undefined),
      );
    } else {
      this.#state = init;
      this.#status = 'idle';
    }
  }

  /**
   * A call from this node to an idle actor: queues it and returns the caller's promise, the
   * promise of the microtask that runs the mailbox (see CallSlot.answerAfter), which tracks
   * the call's deadline in `deadlines` if the run leaves it unanswered. Returns undefined
   * (and queues nothing) when the actor is not idle, or this turn's microtask runs are spent.
   */
  callIdle(slot: CallSlot, deadlines: Deadlines | undefined): Promise<unknown> | undefined {
    if (this.#status !== 'idle' || microRuns >= MICRO_RUNS_PER_TURN) return undefined;
    this.#queue[this.#tail++] = slot;
    this.#status = 'scheduled';
    countMicroRun();
    return slot.answerAfter(this.#run, deadlines);
  }

  /** Queues a call; the slot settles with the reply or the failure. */
  enqueueCall(slot: CallSlot): void {
    if (this.#status === 'down') {
      slot.fail(new ActorDownError(this.ref, 'noproc'));
      return;
    }
    this.#queue[this.#tail++] = slot;
    if (this.#status === 'idle') this.#schedule();
  }

  /** Queues a cast; dropped if the actor is down. */
  enqueueCast(msg: unknown): void {
    if (this.#status === 'down') return;
    this.#queue[this.#tail++] = new CastEnvelope(msg);
    if (this.#status === 'idle') this.#schedule();
  }

  /** Adds a down listener; returns false (and does not add it) if the actor is already down. */
  addMonitor(fn: DownListener): boolean {
    if (this.#status === 'down') return false;
    (this.#monitors ??= new Set()).add(fn);
    return true;
  }

  removeMonitor(fn: DownListener): void {
    this.#monitors?.delete(fn);
  }

  /** Stops after the running handler; resolves once the actor is down (terminate has run). */
  stop(reason: DownReason = 'normal'): Promise<void> {
    if (this.#status === 'down') return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#downWaiters.push(resolve));
    if (this.#stopReason === undefined) this.#stopReason = reason;
    if (this.#status === 'idle' || this.#status === 'scheduled') void this.#terminate(reason);
    // 'running' and 'init' pick the reason up when they settle.
    return done;
  }

  #schedule(): void {
    this.#status = 'scheduled';
    if (microRuns < MICRO_RUNS_PER_TURN) {
      countMicroRun();
      // A then on a settled promise is a bare V8 microtask; queueMicrotask costs about
      // three times more in Node (it tracks async context).
      void RESOLVED.then(this.#run);
    } else {
      // Actors calling each other (or an app looping on `await ref.call()`) would otherwise
      // run in microtasks forever and starve timers and sockets: yield to the event loop.
      setImmediate(this.#run);
    }
  }

  #run = (): void => {
    if (this.#status !== 'scheduled') return;
    this.#loop();
  };

  /** Handles queued messages until the mailbox is empty or a handler goes async. */
  #loop(): void {
    const queue = this.#queue;
    while (this.#head < this.#tail) {
      if (this.#stopReason !== undefined) {
        void this.#terminate(this.#stopReason);
        return;
      }
      const env = queue[this.#head]!;
      queue[this.#head++] = undefined;
      this.#status = 'running';
      if (env instanceof CallSlot) {
        if (!this.#handleCall(env)) return;
      } else if (!this.#handleCast(env.msg)) {
        return;
      }
    }
    this.#drained();
    this.#status = 'idle';
    if (this.#stopReason !== undefined) void this.#terminate(this.#stopReason);
  }

  /** Returns true when the handler finished synchronously and the loop may go on. */
  #handleCall(slot: CallSlot): boolean {
    const handler = this.#behavior.handleCall;
    if (!handler) {
      slot.fail(new TypeError(`actor ${this.ref.id}@${this.ref.node} has no handleCall`));
      return true;
    }
    let result: unknown;
    const msg = slot.msg;
    slot.msg = undefined;
    this.#current = slot;
    try {
      result = handler(msg, this.#state, slot);
    } catch (err) {
      this.#crash(err, slot);
      return false;
    }
    if (isThenable(result)) {
      result.then(
        (r) => {
          if (this.#applyCall(r, slot)) this.#afterHandler();
        },
        (err) => this.#crash(err, slot),
      );
      return false;
    }
    return this.#applyCall(result, slot);
  }

  #applyCall(result: unknown, slot: CallSlot): boolean {
    this.#current = undefined;
    if (this.#status === 'down') return false;
    if (result === null || typeof result !== 'object' || !('state' in result)) {
      this.#crash(
        new TypeError(`handleCall of actor ${this.ref.id}@${this.ref.node} must return { reply, state } or { noreply: true, state }`),
        slot,
      );
      return false;
    }
    if ((result as NoReply<unknown>).noreply === true) {
      this.#state = result.state;
      if (!slot.settled) {
        (this.#held ??= new Set()).add(slot);
        slot.onSettle = () => this.#held?.delete(slot);
      }
      return true;
    }
    this.#state = result.state;
    slot.reply((result as Reply<unknown, unknown>).reply);
    return true;
  }

  #handleCast(msg: unknown): boolean {
    const handler = this.#behavior.handleCast;
    if (!handler) return true; // a cast nobody handles is dropped, as an unmatched message
    let result: unknown;
    try {
      result = handler(msg, this.#state);
    } catch (err) {
      this.#crash(err, undefined);
      return false;
    }
    if (isThenable(result)) {
      result.then(
        (state) => {
          if (this.#status === 'down') return;
          this.#state = state;
          this.#afterHandler();
        },
        (err) => this.#crash(err, undefined),
      );
      return false;
    }
    this.#state = result;
    return true;
  }

  /** After an async handler or init: go on with the mailbox, or stop if asked to. */
  #afterHandler(): void {
    if (this.#status === 'down') return;
    if (this.#stopReason !== undefined) {
      void this.#terminate(this.#stopReason);
      return;
    }
    if (this.#head < this.#tail) {
      // A busy actor with async handlers may never see its mailbox empty: drop the handled
      // prefix once it is most of the array, so the mailbox does not grow without bound.
      if (this.#head > 1024 && this.#head * 2 > this.#tail) {
        this.#queue = this.#queue.slice(this.#head, this.#tail);
        this.#tail -= this.#head;
        this.#head = 0;
      }
      this.#status = 'running';
      this.#loop();
    } else {
      this.#drained();
      this.#status = 'idle';
    }
  }

  /** Every entry handled (and cleared): start again at the front; a burst's large array goes. */
  #drained(): void {
    this.#head = 0;
    this.#tail = 0;
    if (this.#queue.length > 1024) this.#queue = [];
  }

  #crash(err: unknown, slot: CallSlot | undefined): void {
    if (this.#status === 'down') return;
    slot?.fail(err);
    void this.#terminate({ crashed: err });
  }

  async #terminate(reason: DownReason): Promise<void> {
    if (this.#status === 'down') return;
    this.#status = 'down';
    const state = this.#state;
    this.#state = undefined;
    // Fail everything queued or held, then run terminate, then tell the monitors.
    const queued = this.#queue;
    for (let i = this.#head; i < this.#tail; i++) {
      const env = queued[i];
      if (env instanceof CallSlot) env.fail(new ActorDownError(this.ref, reason));
    }
    this.#queue = [];
    this.#head = 0;
    this.#tail = 0;
    this.#current?.fail(new ActorDownError(this.ref, reason));
    this.#current = undefined;
    if (this.#held) {
      for (const slot of this.#held) slot.fail(new ActorDownError(this.ref, reason));
      this.#held = undefined;
    }
    if (this.#behavior.terminate) {
      try {
        await this.#behavior.terminate(reason, state);
      } catch {
        // terminate's own failure does not change why the actor went down
      }
    }
    this.#onDown(this, reason);
    const monitors = this.#monitors;
    this.#monitors = undefined;
    if (monitors) for (const fn of monitors) safely(fn, reason);
    for (const resolve of this.#downWaiters) resolve();
    this.#downWaiters = [];
  }

  /** Immediate down without handlers running (node shutting down hard). */
  kill(reason: DownReason): Promise<void> {
    this.#stopReason ??= reason;
    if (this.#status === 'running' || this.#status === 'init') {
      // Do not wait for a handler that may never settle.
      return this.#terminate(reason);
    }
    return this.stop(reason);
  }
}

function safely(fn: DownListener, reason: DownReason): void {
  try {
    fn(reason);
  } catch (err) {
    // A monitor callback that throws must not break the others.
    queueMicrotask(() => {
      throw err;
    });
  }
}
