// The one async context of the library: what the current async context holds (locks of the
// lock service, node-local locks of the store), under keys chosen by their owners. Re-entrance
// reads it: a `trans` inside the `fn` of the same lock runs at once under the lock held.
//
// One AsyncLocalStorage for the whole process, not one per use: on Node 20 each enabled
// instance adds its own cost to every `await` of the process (measured: ~55 ns per instance).
// Owners keep their keys apart (the lock service prefixes them per service, the store uses
// its entry objects), so a lock held through one owner never makes another re-entrant.
import { AsyncLocalStorage } from 'node:async_hooks';

const context = new AsyncLocalStorage<ReadonlyMap<unknown, unknown>>();

/** What the current async context holds under `key`, or undefined. */
export function heldUnder(key: unknown): unknown {
  return context.getStore()?.get(key);
}

/** Runs `fn(arg)` in a context that holds `value` under `key`, besides what the current one holds. */
export function runHolding<A, R>(key: unknown, value: unknown, fn: (arg: A) => R, arg: A): R {
  const held = new Map(context.getStore());
  held.set(key, value);
  return context.run(held, fn, arg);
}
