// A pending call: the promise its caller awaits, settled exactly once by a reply, a failure
// or its deadline. A reply that comes after the deadline finds the slot settled and is
// dropped, so it can never reach a later call. Used for local and remote calls alike.
import { CallTimeoutError } from '../errors.js';
import type { From } from './behavior.js';
import type { DeadlineEntry, DeadlineTracker } from './deadlines.js';
import type { ActorRefData } from './ref.js';

export class CallSlot<R = unknown> implements DeadlineEntry, From<R> {
  settled = false;
  bucket: DeadlineTracker | undefined = undefined;
  readonly promise: Promise<R>;
  readonly ref: ActorRefData;
  readonly timeout: number;
  /** The message, while the slot waits in a mailbox. */
  msg: unknown;
  /** Runs once when the slot settles (remote calls drop their pending entry here). */
  onSettle: (() => void) | undefined = undefined;
  #resolve!: (value: R) => void;
  #reject!: (reason: unknown) => void;

  constructor(ref: ActorRefData, timeout: number, msg?: unknown) {
    this.ref = ref;
    this.timeout = timeout;
    this.msg = msg;
    this.promise = new Promise<R>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  reply(value: R): void {
    if (this.settled) return;
    this.settled = true;
    this.bucket?.settled();
    this.#resolve(value);
    this.onSettle?.();
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.bucket?.settled();
    this.#reject(error);
    this.onSettle?.();
  }

  expire(): void {
    this.fail(new CallTimeoutError(this.ref, this.timeout));
  }
}
