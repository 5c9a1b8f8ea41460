// `defineExpirables(definitions, options)`: validates every definition at define time and
// builds the typed object: a named function and an `…OrThrow` per expirable, then the
// generic methods, all delegating to the store engine.
//
// The named functions are the hot path: the engine builds them (store/reader.ts); this
// module only names them.
import { InvalidDefinitionError, InvalidOptionError } from '../errors.js';
import type { Node } from '../node.js';
import { Store } from '../store/store.js';
import { RedisBackend } from '../store/backends/redis/backend.js';
import type { ExpirableEngine } from '../store/engine.js';
import type { ExpirableSpec } from '../store/spec.js';
import type { Clock } from '../util/clock.js';
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
  /**
   * The clock every expiry, fetch timeout and refresh timer of this store reads: for tests,
   * which move a fake clock instead of sleeping through expiries. @default the system clock
   */
  clock?: Clock;
  /**
   * Where cluster-scope expirables coordinate: `redisBackend({ url })` (API.md §7). The store
   * owns it from then on: `close()` closes it. @default the node's mesh
   */
  backend?: RedisBackend;
}

const KNOWN_OPTIONS = new Set(['node', 'namespace', 'peerTimeout', 'clock', 'backend']);

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

  const backend = options.backend;
  if (backend !== undefined && !(backend instanceof RedisBackend)) throw new InvalidOptionError('backend', 'a backend from redisBackend()', backend);

  const names = new Set(Object.keys(definitions));
  const clock = options.clock;
  if (clock !== undefined && (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function' || typeof clock.wallNow !== 'function' || typeof clock.timeout !== 'function')) {
    throw new InvalidOptionError('clock', 'an object with now(), wallNow() and timeout(fn, ms, ref)', clock);
  }

  const specs = new Map<string, ExpirableSpec>();
  for (const name of names) {
    const why = whyReserved(name, names);
    if (why) throw new InvalidDefinitionError(name, 'name', `\`${name}\` cannot be an expirable's name: ${why}`);
    specs.set(name, specOf(name, (definitions as Record<string, unknown>)[name]));
  }

  const store = new Store({ namespace, node: node ?? embeddedNode, peerTimeout, clock, ...(backend ? { backend } : {}) }, specs);
  const api: Record<string, unknown> = {};
  for (const [name, engine] of store.engines) {
    api[name] = engine.read;
    api[`${name}OrThrow`] = engine.readOrThrow;
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
