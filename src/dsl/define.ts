// `defineExpirables(definitions, options)`: validates every definition at define time and
// builds the typed object: a named function and an `…OrThrow` per expirable, then the
// generic methods, all delegating to the store engine.
//
// The named functions are the hot path: a cached hit is a synchronous check of the local
// replica's monotonic deadline and returns a promise resolved once when the value arrived.
// No mailbox hop, no lock, no allocation.
import { performance } from 'node:perf_hooks';
import { InvalidDefinitionError, InvalidOptionError } from '../errors.js';
import type { Node } from '../node.js';
import { Store } from '../store/store.js';
import type { ExpirableEngine, EngineSpec } from '../store/engine.js';
import type { ExpirableResult } from './result.js';
import { specOf } from './definition.js';
import { embeddedNode } from './embedded.js';
import { whyReserved } from './reserved.js';
import type { Definitions, ExpirableStats, Expirables, NoReservedNames } from './types.js';

export interface DefineOptions {
  /** The node the store runs on. @default the embedded standalone node, started on first use */
  node?: Node;
  /**
   * Names this store in the cluster: stores with the same namespace on different nodes share
   * their expirables; one namespace runs once per node. @default 'default'
   */
  namespace?: string;
  /** Milliseconds a peer has to answer when asked for its value, pushed one, or cleared. @default 2000 */
  peerTimeout?: number;
}

const KNOWN_OPTIONS = new Set(['node', 'namespace', 'peerTimeout']);

/** Builds the typed expirables object from `definitions` (see API.md §5). */
export function defineExpirables<const D extends Definitions>(definitions: D & NoReservedNames<D>, options: DefineOptions = {}): Expirables<D> {
  if (typeof definitions !== 'object' || definitions === null) {
    throw new InvalidOptionError('definitions', 'an object of expirable(...) definitions', definitions);
  }
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
  for (const k of Object.keys(options)) if (!KNOWN_OPTIONS.has(k)) throw new InvalidOptionError(k, `one of ${[...KNOWN_OPTIONS].join(', ')}`, k);
  const namespace = options.namespace ?? 'default';
  if (typeof namespace !== 'string' || !/^[\w.:@-]{1,200}$/.test(namespace)) {
    throw new InvalidOptionError('namespace', 'a string of 1-200 letters, digits or . _ - : @', namespace);
  }
  const node = options.node;
  if (node !== undefined && (typeof node !== 'object' || node === null || typeof (node as Node).spawn !== 'function')) {
    throw new InvalidOptionError('node', 'a node from startNode()', node);
  }
  const peerTimeout = options.peerTimeout ?? 2_000;
  if (typeof peerTimeout !== 'number' || !(peerTimeout > 0)) throw new InvalidOptionError('peerTimeout', 'a positive number of ms', peerTimeout);

  const names = new Set(Object.keys(definitions));
  const specs = new Map<string, EngineSpec>();
  for (const name of names) {
    const why = whyReserved(name, names);
    if (why) throw new InvalidDefinitionError(name, 'name', `\`${name}\` cannot be an expirable's name: ${why}`);
    specs.set(name, specOf(name, (definitions as Record<string, unknown>)[name]));
  }

  const store = new Store({ namespace, node: node ?? embeddedNode, peerTimeout }, specs);
  const api: Record<string, unknown> = {};
  for (const [name, engine] of store.engines) {
    api[name] = named(engine);
    api[`${name}OrThrow`] = namedOrThrow(engine);
  }

  const engineOf = (name: unknown): ExpirableEngine => {
    const engine = typeof name === 'string' ? store.engines.get(name) : undefined;
    if (!engine) throw new InvalidOptionError('name', `the name of an expirable of this store (${[...names].join(', ')})`, name);
    return engine;
  };
  const call = (name: unknown, suffix: '' | 'OrThrow', key: unknown[]): Promise<never> => {
    try {
      engineOf(name);
    } catch (err) {
      return Promise.reject(err);
    }
    return (api[`${name as string}${suffix}`] as (...k: unknown[]) => Promise<never>)(...key);
  };

  Object.assign(api, {
    fetch: (name: unknown, ...key: unknown[]) => call(name, '', key),
    fetchOrThrow: (name: unknown, ...key: unknown[]) => call(name, 'OrThrow', key),
    clear: async (name: unknown, ...key: unknown[]) => {
      const engine = engineOf(name);
      if (engine.spec.keyed && key.length === 0) await engine.clearAllKeys();
      else await engine.clearKey(key[0]);
    },
    clearAll: async () => {
      await Promise.all([...store.engines.values()].map((e) => e.clearAllKeys()));
    },
    replicas: (name: unknown, ...key: unknown[]) => engineOf(name).replicas(key[0]),
    stats: () => {
      const out: Record<string, ExpirableStats> = {};
      for (const [name, engine] of store.engines) out[name] = { ...engine.stats };
      return out;
    },
    putState: async (name: unknown, ...args: unknown[]) => {
      const engine = engineOf(name);
      const [key, state] = engine.spec.keyed ? args : [undefined, args[0]];
      await engine.updateState(key, () => state);
    },
    updateState: async (name: unknown, ...args: unknown[]) => {
      const engine = engineOf(name);
      const [key, fn] = engine.spec.keyed ? args : [undefined, args[0]];
      if (typeof fn !== 'function') throw new InvalidOptionError('fn', 'a function (state) => nextState', fn);
      await engine.updateState(key, fn as (s: unknown) => unknown);
    },
    close: () => store.close(),
  });
  return api as unknown as Expirables<D>;
}

/** `Expirables.name(key?)`: the hot path. */
function named(engine: ExpirableEngine): (key?: unknown) => Promise<ExpirableResult<unknown>> {
  const stats = engine.stats;
  if (!engine.spec.keyed) {
    const e = engine.single!;
    return () => {
      if (e.deadline > performance.now()) {
        stats.hits++;
        return e.result!;
      }
      return engine.miss(e);
    };
  }
  return (key?: unknown) => {
    let e;
    try {
      e = engine.entry(key);
    } catch (err) {
      return Promise.reject(err);
    }
    if (e.deadline > performance.now()) {
      stats.hits++;
      return e.result!;
    }
    return engine.miss(e);
  };
}

/**
 * `Expirables.nameOrThrow(key?)`: the value, or rejects with ExpirableError. The same shape
 * as `named`, kept as a second copy on purpose: a shared builder taking the promise to hand
 * out as a callback would put an extra call on the cached read, the hottest path we have.
 */
function namedOrThrow(engine: ExpirableEngine): (key?: unknown) => Promise<unknown> {
  const stats = engine.stats;
  if (!engine.spec.keyed) {
    const e = engine.single!;
    return () => {
      if (e.deadline > performance.now()) {
        stats.hits++;
        return e.valuePromise!;
      }
      return engine.missOrThrow(e);
    };
  }
  return (key?: unknown) => {
    let e;
    try {
      e = engine.entry(key);
    } catch (err) {
      return Promise.reject(err);
    }
    if (e.deadline > performance.now()) {
      stats.hits++;
      return e.valuePromise!;
    }
    return engine.missOrThrow(e);
  };
}

