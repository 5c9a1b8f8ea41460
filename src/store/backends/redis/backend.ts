// `redisBackend(options)`: the Redis coordination backend of cluster-scope expirables.
// Validates its options at once, loads `@redis/client` (an optional peer dependency) only
// when it first connects, and opens one `RedisNamespace` per store (./namespace.ts) over
// one shared link (./link.ts).
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { InvalidOptionError } from '../../../errors.js';
import { RedisLink, type AnyRedisClient } from './link.js';
import { RedisNamespace, type BackendListener } from './namespace.js';

export interface RedisBackendOptions {
  /**
   * `redis://[[user][:password]@]host[:port][/db]` or `rediss://…` (TLS). The backend makes
   * its own connection, and closes it on `close()`. Exactly one of `url` and `client`.
   */
  url?: string;
  /**
   * An already connected node-redis client (`createClient`) or Cluster client
   * (`createCluster`). The backend neither connects nor closes it; it subscribes on a
   * duplicate of a single-server client (a Cluster client subscribes itself).
   */
  client?: object;
  /** With `url`: the server is a node of a Redis Cluster (the others are discovered). @default false */
  cluster?: boolean;
  /** This process's name, as `holders` (and `replicas()`) list it. @default `<hostname>-<pid>` */
  name?: string;
  /**
   * Ms a fetch lease lasts without renewal; renewed every third of it while the fetch runs.
   * **A process that dies while it fetches blocks the others for at most this long.**
   * @default 5000
   */
  leaseMs?: number;
  /** Ms a process stays listed as holding a replica without renewal (renewed every third). @default 5000 */
  replicaLeaseMs?: number;
  /**
   * Ms the first connection may take. Until it succeeds, operations wait at most this
   * long, then fail with BackendUnavailableError (the store's reason `'unavailable'`).
   * @default 3000
   */
  connectTimeout?: number;
  /**
   * Ms a command may wait for its reply. **A command without a reply in time marks Redis
   * unreachable: every operation then fails at once** until a probe (every
   * `min(1000, commandTimeout)` ms) gets an answer.
   * @default 2000
   */
  commandTimeout?: number;
}

/** The package the backend needs; named in the error when it is missing. */
export const REDIS_CLIENT_PACKAGE = '@redis/client';

interface ClientModule {
  createClient(options: object): AnyRedisClient;
  createCluster(options: object): AnyRedisClient;
}

export class RedisBackend {
  readonly kind = 'redis';
  /** This process's name, as `holders` lists it. */
  readonly name: string;
  readonly leaseMs: number;
  readonly replicaLeaseMs: number;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  readonly #options: RedisBackendOptions;
  #link: RedisLink | undefined = undefined;
  #linkPromise: Promise<RedisLink> | undefined = undefined;
  readonly #namespaces = new Map<string, RedisNamespace>();
  readonly #availability = new Set<(up: boolean, cause?: Error) => void>();
  #closed = false;

  constructor(options: RedisBackendOptions) {
    this.#options = options;
    this.name = options.name ?? `${hostname()}-${process.pid}`;
    this.leaseMs = options.leaseMs ?? 5_000;
    this.replicaLeaseMs = options.replicaLeaseMs ?? 5_000;
    this.connectTimeout = options.connectTimeout ?? 3_000;
    this.commandTimeout = options.commandTimeout ?? 2_000;
  }

  /** True while Redis answers (false before the first connection, and while it is unreachable). */
  get available(): boolean {
    return this.#link?.up ?? false;
  }

  /** Calls `fn` on every change of availability; returns the function that stops it. */
  onAvailability(fn: (up: boolean, cause?: Error) => void): () => void {
    this.#availability.add(fn);
    return () => this.#availability.delete(fn);
  }

  /** Resolves with the next change of availability to `up`. */
  untilAvailability(up: boolean): Promise<void> {
    if (this.available === up && this.#link) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onAvailability((u) => {
        if (u !== up) return;
        off();
        resolve();
      });
    });
  }

  /**
   * Opens the coordination of `namespace` (one per backend): connects on first use,
   * subscribes, and from then on hands what other processes write to `listener`. `origin` names
   * this process in the namespace (holders, the origin of its writes): the backend's `name` by
   * default, the node's name when the store runs on a node (API: `replicas()` lists node names).
   * Rejects with BackendUnavailableError if Redis is not reachable within connectTimeout.
   */
  async open(namespace: string, listener: BackendListener = {}, origin: string = this.name): Promise<RedisNamespace> {
    if (typeof namespace !== 'string' || namespace === '') throw new InvalidOptionError('namespace', 'a non-empty string', namespace);
    if (this.#closed) throw new Error('the redis backend is closed');
    if (this.#namespaces.has(namespace)) throw new InvalidOptionError('namespace', 'a namespace not already open on this backend', namespace);
    const link = await this.#getLink();
    const ns = new RedisNamespace(link, namespace, { origin, leaseMs: this.leaseMs, replicaLeaseMs: this.replicaLeaseMs }, listener);
    this.#namespaces.set(namespace, ns);
    try {
      await link.start();
      await ns.open();
    } catch (err) {
      this.#namespaces.delete(namespace);
      await ns.close().catch(() => undefined);
      throw err;
    }
    return ns;
  }

  #getLink(): Promise<RedisLink> {
    if (this.#link) return Promise.resolve(this.#link);
    this.#linkPromise ??= this.#makeLink().then((link) => (this.#link = link));
    return this.#linkPromise;
  }

  async #makeLink(): Promise<RedisLink> {
    const o = this.#options;
    let client: AnyRedisClient;
    let owned = false;
    if (o.client) {
      client = o.client as AnyRedisClient;
    } else {
      const mod = await loadClientModule();
      const socket = {
        connectTimeout: this.connectTimeout,
        // Retries forever with a short backoff: availability is decided by the link, not here.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1_000),
      };
      client = o.cluster
        ? mod.createCluster({ rootNodes: [{ url: o.url }], defaults: { socket, disableOfflineQueue: true } })
        : mod.createClient({ url: o.url, socket, disableOfflineQueue: true });
      owned = true;
    }
    return new RedisLink({
      client,
      owned,
      connectTimeout: this.connectTimeout,
      commandTimeout: this.commandTimeout,
      probeInterval: Math.min(1_000, this.commandTimeout),
      onUp: () => this.#changed(true),
      onDown: (cause) => this.#changed(false, cause),
      onResubscribed: () => {
        for (const ns of this.#namespaces.values()) ns.resync().catch(() => undefined);
      },
    });
  }

  #changed(up: boolean, cause?: Error): void {
    for (const ns of this.#namespaces.values()) ns.availability(up, cause);
    for (const fn of [...this.#availability]) fn(up, cause);
  }

  /** Closes every namespace (timers, leases, subscriptions) and the connection if it is ours. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#namespaces.values()].map((ns) => ns.close()));
    this.#namespaces.clear();
    const link = this.#link ?? (this.#linkPromise ? await this.#linkPromise.catch(() => undefined) : undefined);
    await link?.close();
  }
}

/**
 * The Redis backend. Throws InvalidOptionError for a bad option (naming it) and an Error
 * naming the package to install when `@redis/client` is missing; connects on first use.
 */
export function redisBackend(options: RedisBackendOptions): RedisBackend {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object with `url` or `client`', options);
  const { url, client } = options;
  if (url !== undefined && client !== undefined) throw new InvalidOptionError('url', 'absent when `client` is given (give one of `url` and `client`)', url);
  if (url === undefined && client === undefined) throw new InvalidOptionError('url', 'a Redis URL (redis://host:port) when no `client` is given', url);
  if (url !== undefined && (typeof url !== 'string' || !isRedisUrl(url))) throw new InvalidOptionError('url', 'a Redis URL (redis://… or rediss://…)', url);
  if (client !== undefined && !looksLikeClient(client)) throw new InvalidOptionError('client', 'a connected node-redis client or Cluster client', client);
  if (options.cluster !== undefined && typeof options.cluster !== 'boolean') throw new InvalidOptionError('cluster', 'a boolean', options.cluster);
  if (options.cluster && client !== undefined) throw new InvalidOptionError('cluster', 'used only with `url` (a Cluster client is recognized as it is)', options.cluster);
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) throw new InvalidOptionError('name', 'a non-empty string', options.name);
  for (const key of ['leaseMs', 'replicaLeaseMs', 'connectTimeout', 'commandTimeout'] as const) {
    const v = options[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 10)) throw new InvalidOptionError(key, 'a finite number of milliseconds, at least 10', v);
  }
  if (client === undefined) requireClientModule();
  return new RedisBackend(options);
}

function isRedisUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
  } catch {
    return false;
  }
}

function looksLikeClient(c: unknown): boolean {
  return typeof c === 'object' && c !== null && typeof (c as { sendCommand?: unknown }).sendCommand === 'function' && typeof (c as { on?: unknown }).on === 'function';
}

const missing = (cause?: unknown): Error =>
  new Error(`redisBackend needs the package ${REDIS_CLIENT_PACKAGE}: install it with \`npm install ${REDIS_CLIENT_PACKAGE}\``, cause === undefined ? undefined : { cause });

/** Throws (naming the package) when `@redis/client` cannot be resolved from here. */
function requireClientModule(): void {
  try {
    createRequire(import.meta.url).resolve(REDIS_CLIENT_PACKAGE);
  } catch (err) {
    throw missing(err);
  }
}

async function loadClientModule(): Promise<ClientModule> {
  try {
    return (await import(REDIS_CLIENT_PACKAGE)) as unknown as ClientModule;
  } catch (err) {
    throw missing(err);
  }
}
