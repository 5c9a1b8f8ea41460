// The one async context of the library: what the current async context holds (locks of the
// lock service, node-local locks of the store), under keys chosen by their owners. Re-entrance
// reads it: a `trans` inside the `fn` of the same lock runs at once under the lock held.
//
// One AsyncLocalStorage for the whole process, not one per use: on Node lines where an
// AsyncLocalStorage is built on async_hooks (Node 20 and 22 by default), each enabled
// instance installs promise hooks that cost on every promise of the process, the user's
// included (measured on Node 20: an `await` 62 ns before, 204 ns after). So there the
// context is on only while something is held: `runHolding` enters it, and once the last
// holder has left it is disabled again, which removes the hooks. A process that holds
// nothing (between fetches, between `trans` calls) no longer pays the hooks on its awaits.
// What removing them cannot undo: once promise hooks have been installed in a process, V8
// keeps its slower path for every `await` there (a protector, never restored), about 1.3x
// to 1.6x the untaxed floor on Node 20 (and on Node 24 for a process that installs hooks
// itself); only a process that never enters the context pays nothing at all.
//
// Turning the hooks on and off costs about as much as a local `trans` itself (~1 us on
// Node 20), so a loop of `trans` calls must not pay it on each: the context is turned off
// at once the first time in a turn of the event loop, but once it has been entered again
// in that same turn (a loop), later disables wait for the next turn, and happen then only
// if nothing is held. Where an AsyncLocalStorage rides on the async context frame V8
// carries anyway (Node 24 by default), entering it installs no hook and costs nothing on
// other promises, and it stays on. Which of the two the running Node uses is found out
// once, by what entering a context does to a new promise (see `entersPromiseTracking`),
// not by its version.
//
// Invariants:
// - `holds` counts the `runHolding` calls not yet left; every value stored under a key is
//   released (its owner's `held` is false) once its `leaveHolding` has run.
// - With `holds === 0` nothing is held anywhere: `heldUnder` answers undefined without
//   reading the context, and a context carried over by a task from an earlier hold (disabled
//   or not) holds only released values, which every owner checks before it re-enters.
//
// Owners keep their keys apart (the lock service prefixes them per service, the store uses
// its entry objects), so a lock held through one owner never makes another re-entrant.
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * One thing held in a context: `value` under `key`, on top of what the enclosing context held
 * (`outer`). A chain rather than a Map per context: on the Node lines with promise hooks every
 * promise created in the context keeps the context's store, so a value promise made under a
 * lock (a replica's cached result) keeps it as long as the value lives; a record is ~20x
 * smaller than a Map there, and cheaper to make.
 */
interface Held {
  readonly key: unknown;
  readonly value: unknown;
  readonly outer: Held | undefined;
}

const context = new AsyncLocalStorage<Held>();

/** `runHolding` calls whose `leaveHolding` has not run yet. */
let holds = 0;

/** Whether entering `context` turns on the process's promise tracking; found on first use. */
let tracking: boolean | undefined;

/** The context was turned off in this turn of the event loop (`newTurn` is scheduled). */
let offThisTurn = false;
/** It was entered again after that, in the same turn: disables wait for the next turn. */
let looping = false;
/** A disable waits for the next turn. */
let disablePending = false;

const noop = (): void => {};

/**
 * True when running an AsyncLocalStorage makes the promises created inside it carry async
 * context data (async_hooks' promise hooks: a cost on every promise of the process while
 * enabled), false when it does not (the async context frame). Probed with an instance of
 * its own, disabled again at once.
 */
function entersPromiseTracking(): boolean {
  const probe = new AsyncLocalStorage<boolean>();
  let tracked = false;
  probe.run(true, () => {
    tracked = Object.getOwnPropertySymbols(new Promise(noop)).length > 0;
  });
  probe.disable();
  return tracked;
}

/** What the current async context holds under `key`, or undefined. */
export function heldUnder(key: unknown): unknown {
  if (holds === 0) return undefined;
  for (let h = context.getStore(); h !== undefined; h = h.outer) if (h.key === key) return h.value;
  return undefined;
}

/**
 * Runs `fn(arg)` in a context that holds `value` under `key`, besides what the current one
 * holds. The caller calls `leaveHolding()` exactly once when what `fn` started is over (its
 * promise settled, or it threw), and marks `value` released before or at that point.
 */
export function runHolding<A, R>(key: unknown, value: unknown, fn: (arg: A) => R, arg: A): R {
  holds++;
  if (offThisTurn) looping = true;
  tracking ??= entersPromiseTracking();
  const held: Held = { key, value, outer: holds === 1 ? undefined : context.getStore() };
  return context.run(held, fn, arg);
}

/**
 * Ends one `runHolding`. After the last one, where the context costs on every promise, it is
 * turned off: at once, or at the next turn of the event loop when it is entered over and
 * over in this one (see the top of this file).
 */
export function leaveHolding(): void {
  if (--holds !== 0 || tracking !== true) return;
  if (looping) {
    disablePending = true;
    return;
  }
  context.disable();
  if (!offThisTurn) {
    offThisTurn = true;
    setImmediate(newTurn);
  }
}

function newTurn(): void {
  offThisTurn = false;
  looping = false;
  if (disablePending) {
    disablePending = false;
    if (holds === 0) context.disable();
  }
}

/**
 * Runs `fn` outside whatever is held, for what outlives the hold: where promises carry the
 * context (promise hooks), a promise made while a lock is held keeps the context's records,
 * and through them the lock's, as long as the promise lives (a replica's cached result: as
 * long as its value). Made here, it keeps nothing. Where nothing is held, or promises do not
 * carry the context, it is `fn()`.
 */
export function detached<R>(fn: () => R): R {
  if (holds === 0 || tracking !== true) return fn();
  return context.exit(fn);
}

/** `runHolding` calls not yet left (for tests and diagnostics). */
export function holding(): number {
  return holds;
}
