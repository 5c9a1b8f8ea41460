// The typed object `defineExpirables` returns, computed from the definitions with mapped
// types and key remapping: one named function and one `…OrThrow` per expirable, and the
// generic methods, all checked against the names, key and state types of the definition.
import type { AnyDefinition, ExpirableDefinition } from './definition.js';
import type { ExpirableResult } from '../store/result.js';
import type { ExpirableStats } from '../store/spec.js';

export type { ExpirableStats };
import type { ReservedName } from './reserved.js';

/** The definitions given to `defineExpirables`. */
export type Definitions = Record<string, AnyDefinition>;

/* eslint-disable @typescript-eslint/no-explicit-any */
/** The value type of a definition. */
export type ValueOf<D> = D extends ExpirableDefinition<infer V, any, any, any> ? V : never;
/** The key type of a keyed definition (never for an unkeyed one). */
export type KeyOf<D> = D extends ExpirableDefinition<any, infer K, any, any> ? K : never;
/** The state type of a definition. */
export type StateOf<D> = D extends ExpirableDefinition<any, any, infer S, any> ? S : never;
/** `[key]` for a keyed definition, `[]` for an unkeyed one. */
export type KeyArgs<D> = D extends ExpirableDefinition<any, infer K, any, infer Keyed> ? (Keyed extends true ? [key: KeyParam<K>] : []) : never;
/** `[key?]` for a keyed definition (clear one key or all), `[]` for an unkeyed one. */
export type OptionalKeyArgs<D> = D extends ExpirableDefinition<any, infer K, any, infer Keyed> ? (Keyed extends true ? [key?: KeyParam<K>] : []) : never;
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * Plain data: the key type of a fetch that left its key unannotated. (At run time a key may be
 * any value the wire codec carries, Map, Set, Date and BigInt included: src/mesh/canonical-key.ts.)
 */
export type KeyData = string | number | boolean | null | readonly KeyData[] | { readonly [k: string]: KeyData };
/**
 * The key parameter of a keyed expirable: the fetch's key type, or plain data when the fetch
 * left its key unannotated (`unknown`), so symbols, functions or bigints do not compile.
 */
export type KeyParam<K> = unknown extends K ? KeyData : K;
/* eslint-disable @typescript-eslint/no-explicit-any */
/* eslint-enable @typescript-eslint/no-explicit-any */

/** `Expirables.name()` and `Expirables.nameOrThrow()` for each expirable. */
export type NamedFunctions<D extends Definitions> = {
  [N in keyof D & string]: (...key: KeyArgs<D[N]>) => Promise<ExpirableResult<ValueOf<D[N]>>>;
} & {
  [N in keyof D & string as `${N}OrThrow`]: (...key: KeyArgs<D[N]>) => Promise<ValueOf<D[N]>>;
};

/** The generic methods, typed by name. */
export interface GenericMethods<D extends Definitions> {
  /** Same as the named function. */
  fetch<N extends keyof D & string>(name: N, ...key: KeyArgs<D[N]>): Promise<ExpirableResult<ValueOf<D[N]>>>;
  /** Same as the named `…OrThrow` function: the value, or rejects with ExpirableError. */
  fetchOrThrow<N extends keyof D & string>(name: N, ...key: KeyArgs<D[N]>): Promise<ValueOf<D[N]>>;
  /**
   * Drops the value (and state) on every replica (cluster scope) or on this node (local);
   * for a keyed expirable, one key or, without a key, every key. The next call fetches.
   */
  clear<N extends keyof D & string>(name: N, ...key: OptionalKeyArgs<D[N]>): Promise<void>;
  /** `clear` of every expirable of this store. */
  clearAll(): Promise<void>;
  /** Names of the nodes holding a replica of the value now (sorted). */
  replicas<N extends keyof D & string>(name: N, ...key: KeyArgs<D[N]>): string[];
  /** Counters per expirable, on this node. */
  stats(): { [N in keyof D & string]: ExpirableStats };
  /** Sets the state handed to the next fetch (on every replica, for cluster scope). */
  putState<N extends keyof D & string>(name: N, ...args: [...KeyArgs<D[N]>, state: StateOf<D[N]>]): Promise<void>;
  /**
   * Replaces the state with `fn(state)`, run once, under the expirable's lock. `fn` has the
   * expirable's `fetchTimeout`: past it, this rejects with ExpirableError reason 'timeout',
   * the lock is released and the state is unchanged.
   */
  updateState<N extends keyof D & string>(
    name: N,
    ...args: [...KeyArgs<D[N]>, fn: (state: StateOf<D[N]> | undefined) => StateOf<D[N]> | PromiseLike<StateOf<D[N]>>]
  ): Promise<void>;
  /** Stops this store on its node: timers, replicas, groups. Other nodes keep theirs. */
  close(): Promise<void>;
}

/** The object `defineExpirables` returns. */
export type Expirables<D extends Definitions> = NamedFunctions<D> & GenericMethods<D>;

/**
 * Refuses reserved names at compile time (they also throw at define time): the generic
 * methods and special names, and `xOrThrow` next to `x` (it collides with x's generated
 * `…OrThrow` function).
 */
export type NoReservedNames<D> = { [N in keyof D & ReservedName]: never } & { [N in keyof D & string as `${N}OrThrow`]?: never };
