// `expirable(options)`: one expirable's definition, checked at define time and typed so
// `defineExpirables` can infer its value, key and state types. Validation throws
// InvalidDefinitionError naming the expirable (once `defineExpirables` knows the name) and
// the option, so a bad definition fails when the module loads, not on the first call.
import { InvalidDefinitionError, safeString, typeName } from '../errors.js';
import type { FetchOutcome } from '../store/result.js';
import type { ExpirableSpec } from '../store/spec.js';

type MaybePromise<T> = T | PromiseLike<T>;

/** When a value is refreshed: on the first call after expiry, or in the background before it. */
export type RefreshOption = 'lazy' | { eager: { beforeExpiry: number } };

/** Where a value lives: fetched once for the cluster and replicated, or once per node. */
export type ScopeOption = 'cluster' | 'local';

/** Options every expirable takes. */
export interface CommonOptions {
  /**
   * `'cluster'`: at most one fetch at a time in the whole cluster, the value replicated to
   * every node that uses it. `'local'`: each node fetches and keeps its own.
   * @default 'cluster'
   */
  scope?: ScopeOption;
  /**
   * `'lazy'`: the first call after expiry refreshes. `{ eager: { beforeExpiry } }`: a
   * background refresh starts `beforeExpiry` ms (plus a small random jitter) before expiry;
   * callers keep the current value meanwhile. The refresh never comes sooner than
   * `max(1 s, beforeExpiry / 10)` after a value arrived; a value living shorter than that is
   * refreshed lazily. `Infinity` values are never refreshed.
   * @default 'lazy'
   */
  refresh?: RefreshOption;
  /** Milliseconds a fetch may run; past it the fetch is a failure with reason 'timeout'. @default 30000 */
  fetchTimeout?: number;
}

/** Options of an unkeyed expirable whose fetch receives `(state)`. */
export interface UnkeyedOptions<V, S> extends CommonOptions {
  keyed?: false;
  /** Fetch the value: `ok(value, expiresAt[, nextState])`, `fail(reason?)`, or throw. */
  fetch: (state: S | undefined) => MaybePromise<FetchOutcome<V, S>>;
  /** Fail with 'state_required' (without calling fetch) until `putState`/`updateState` ran. */
  requireInitialState?: false;
}

/** An unkeyed expirable that needs its state before the first fetch. */
export interface UnkeyedRequiredStateOptions<V, S> extends CommonOptions {
  keyed?: false;
  fetch: (state: S) => MaybePromise<FetchOutcome<V, S>>;
  requireInitialState: true;
}

/** Options of a keyed expirable whose fetch receives `(key, state)`. */
export interface KeyedOptions<V, K, S> extends CommonOptions {
  keyed: true;
  fetch: (key: K, state: S | undefined) => MaybePromise<FetchOutcome<V, S>>;
  requireInitialState?: false;
  /**
   * Bound on the live keys of this expirable on one node; the least recently used goes first.
   * Eviction drops what this node holds for the key, its state included (a state set with
   * putState is then lost unless another node holds it). @default 10000
   */
  maxKeys?: number;
}

/** A keyed expirable that needs each key's state before its first fetch. */
export interface KeyedRequiredStateOptions<V, K, S> extends CommonOptions {
  keyed: true;
  fetch: (key: K, state: S) => MaybePromise<FetchOutcome<V, S>>;
  requireInitialState: true;
  /**
   * Bound on the live keys on one node (least recently used first). Eviction drops the key's
   * state too: the key then fails with 'state_required' until its state is put again (unless
   * another node still holds it). @default 10000
   */
  maxKeys?: number;
}

declare const valueType: unique symbol;
declare const keyType: unique symbol;
declare const stateType: unique symbol;
declare const keyedType: unique symbol;

/** Brand of definitions built by `expirable()`. */
export const DEFINITION = Symbol.for('expirable-store.definition');

/** One expirable's definition; the phantom fields carry its types to `defineExpirables`. */
export interface ExpirableDefinition<V, K, S, Keyed extends boolean> {
  readonly [DEFINITION]: ExpirableSpec;
  /** Checks left for `defineExpirables`, which knows the name. */
  readonly problem: { option: string; message: string } | undefined;
  readonly [valueType]?: V;
  readonly [keyType]?: K;
  readonly [stateType]?: S;
  readonly [keyedType]?: Keyed;
}

/** Any definition, for constraints. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDefinition = ExpirableDefinition<any, any, any, boolean>;

export const DEFAULT_FETCH_TIMEOUT = 30_000;
export const DEFAULT_MAX_KEYS = 10_000;

const KNOWN = new Set(['fetch', 'scope', 'refresh', 'fetchTimeout', 'keyed', 'maxKeys', 'requireInitialState']);

/** Defines one expirable (see the option types for what each option does). */
export function expirable<V, K, S = undefined>(options: KeyedRequiredStateOptions<V, K, S>): ExpirableDefinition<V, K, S, true>;
export function expirable<V, K, S = undefined>(options: KeyedOptions<V, K, S>): ExpirableDefinition<V, K, S, true>;
export function expirable<V, S = undefined>(options: UnkeyedRequiredStateOptions<V, S>): ExpirableDefinition<V, never, S, false>;
export function expirable<V, S = undefined>(options: UnkeyedOptions<V, S>): ExpirableDefinition<V, never, S, false>;
export function expirable(options: unknown): AnyDefinition {
  // A problem is recorded here and thrown by defineExpirables, the one place that knows the
  // expirable's name (a definition is only ever used inside defineExpirables, at define time).
  const { spec, problem } = normalize(options);
  return Object.freeze({ [DEFINITION]: spec, problem });
}

/** Throws InvalidDefinitionError if `def` is not a valid definition of `name`. */
export function specOf(name: string, def: unknown): ExpirableSpec {
  if (typeof def !== 'object' || def === null || !(DEFINITION in def)) {
    throw new InvalidDefinitionError(name, 'definition', `expected expirable({ fetch, ... }), got ${safeString(def)} (${typeName(def)})`);
  }
  const d = def as AnyDefinition;
  if (d.problem) throw new InvalidDefinitionError(name, d.problem.option, d.problem.message);
  return d[DEFINITION];
}

function normalize(options: unknown): { spec: ExpirableSpec; problem: { option: string; message: string } | undefined } {
  let problem: { option: string; message: string } | undefined;
  const bad = (option: string, message: string): void => {
    problem ??= { option, message };
  };
  const o = (typeof options === 'object' && options !== null ? options : {}) as Record<string, unknown>;
  if (typeof options !== 'object' || options === null) bad('options', `expected an object, got ${safeString(options)} (${typeName(options)})`);
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) bad(key, `unknown option (known: ${[...KNOWN].join(', ')})`);

  const fetch = o.fetch;
  if (typeof fetch !== 'function') bad('fetch', `required: a function returning ok(value, expiresAt) or fail(reason), got ${safeString(fetch)} (${typeName(fetch)})`);

  const scope = o.scope ?? 'cluster';
  if (scope !== 'cluster' && scope !== 'local') bad('scope', `expected 'cluster' or 'local', got ${safeString(scope)} (${typeName(scope)})`);

  let beforeExpiry: number | undefined;
  const refresh = o.refresh ?? 'lazy';
  if (refresh !== 'lazy') {
    const eager = typeof refresh === 'object' && refresh !== null ? (refresh as { eager?: unknown }).eager : undefined;
    const ms = typeof eager === 'object' && eager !== null ? (eager as { beforeExpiry?: unknown }).beforeExpiry : undefined;
    // A misspelt or extra option inside would otherwise be ignored without a word.
    const extra = (obj: unknown, known: string, path: string): string | undefined => {
      const k = typeof obj === 'object' && obj !== null ? Object.keys(obj).find((key) => key !== known) : undefined;
      return k === undefined ? undefined : `${path}.${k}`;
    };
    const unknown = extra(refresh, 'eager', 'refresh') ?? extra(eager, 'beforeExpiry', 'refresh.eager');
    if (eager === undefined || eager === null || typeof eager !== 'object') {
      bad('refresh', `expected 'lazy' or { eager: { beforeExpiry: ms } }, got ${safeString(refresh)} (${typeName(refresh)})`);
    } else if (unknown !== undefined) {
      bad(unknown, `unknown option (expected 'lazy' or { eager: { beforeExpiry: ms } })`);
    } else if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      bad('refresh.eager.beforeExpiry', `expected a finite number of milliseconds >= 0, got ${safeString(ms)} (${typeName(ms)})`);
    } else {
      beforeExpiry = ms;
    }
  }

  const fetchTimeout = o.fetchTimeout ?? DEFAULT_FETCH_TIMEOUT;
  if (typeof fetchTimeout !== 'number' || Number.isNaN(fetchTimeout) || fetchTimeout <= 0) {
    bad('fetchTimeout', `expected a positive number of milliseconds (or Infinity), got ${safeString(fetchTimeout)} (${typeName(fetchTimeout)})`);
  }

  const keyed = o.keyed ?? false;
  if (typeof keyed !== 'boolean') bad('keyed', `expected a boolean, got ${safeString(keyed)} (${typeName(keyed)})`);

  const maxKeys = o.maxKeys ?? DEFAULT_MAX_KEYS;
  if (o.maxKeys !== undefined && keyed !== true) bad('maxKeys', 'only a keyed expirable (keyed: true) has keys to bound');
  if (typeof maxKeys !== 'number' || !Number.isInteger(maxKeys) || maxKeys < 1) {
    bad('maxKeys', `expected a positive integer, got ${safeString(maxKeys)} (${typeName(maxKeys)})`);
  }

  const requireInitialState = o.requireInitialState ?? false;
  if (typeof requireInitialState !== 'boolean') {
    bad('requireInitialState', `expected a boolean, got ${safeString(requireInitialState)} (${typeName(requireInitialState)})`);
  }
  // No check of `fetch.length` against the state parameter: it does not count a parameter
  // with a default value or a rest parameter, which receive the state all the same.

  const spec: ExpirableSpec = Object.freeze({
    fetch: fetch as (...args: unknown[]) => unknown,
    scope: scope as ScopeOption,
    beforeExpiry,
    fetchTimeout: fetchTimeout as number,
    keyed: keyed === true,
    maxKeys: maxKeys as number,
    requireInitialState: requireInitialState === true,
  });
  return { spec, problem };
}
