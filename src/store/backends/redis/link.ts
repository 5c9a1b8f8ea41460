// The connection of the Redis backend: one command connection and one subscriber, on a
// single server or a Redis Cluster, and what the backend knows of their health.
//
// Design note
// -----------
// - Availability is a two-state machine, `up` / `down`. The link goes down when a command
//   gets no reply within `commandTimeout` (a stopped or overloaded server keeps its sockets
//   open, so only a deadline tells), when a command fails for want of a connection, or when
//   the client reports a socket error. While down, every command fails at once with
//   BackendUnavailableError (fail fast, never a queue that grows), and a probe (PING with
//   the same deadline) runs every `probeInterval` ms; the first answer brings the link up.
//   The client's own reconnection (node-redis retries with backoff) brings it up as well.
// - `onUp` fires on every down -> up transition, `onResubscribed` when the subscriber is
//   subscribed again after its connection was lost (node-redis resubscribes before it says
//   `ready`). The backend resyncs on both: what was published while the process was not
//   listening is read back, so nothing is missed.
// - Scripts run with EVALSHA and fall back to EVAL on NOSCRIPT (a restarted server, a new
//   Cluster node, a flushed script cache).
// - A client handed in by the caller is neither connected nor closed here; a duplicate of
//   it (for the subscriber) is ours. A Cluster client subscribes itself (node-redis keeps
//   one connection per shard for sharded pub/sub, and moves it with the slot).
// - Sharded pub/sub (SSUBSCRIBE / SPUBLISH) on Redis 7 and later, on a single server too;
//   PUBLISH / SUBSCRIBE before 7 (single server only).
import { BackendUnavailableError } from '../../../errors.js';
import type { Script } from './scripts.js';

/** RESP type of bulk strings (node-redis `RESP_TYPES.BLOB_STRING`): replied as Buffers. */
const BLOB_STRING = 36;

type Listener = (message: Buffer, channel: Buffer) => void;
type Args = (string | Buffer)[];

/** The part of a node-redis client (`createClient`) this module uses. */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  sendCommand(args: Args, options?: object): Promise<unknown>;
  duplicate(overrides?: object): NodeRedisClient;
  sSubscribe(channels: string, listener: Listener, bufferMode: true): Promise<void>;
  sUnsubscribe(channels: string, listener?: Listener, bufferMode?: true): Promise<void>;
  subscribe(channels: string, listener: Listener, bufferMode: true): Promise<void>;
  unsubscribe(channels: string, listener?: Listener, bufferMode?: true): Promise<void>;
  on(event: string, fn: (...args: any[]) => void): unknown;
  off(event: string, fn: (...args: any[]) => void): unknown;
  close(): Promise<void>;
  destroy(): void;
}

/** The part of a node-redis Cluster client (`createCluster`) this module uses. */
export interface NodeRedisCluster {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: Args, options?: object): Promise<unknown>;
  sSubscribe(channels: string, listener: Listener, bufferMode: true): Promise<void>;
  sUnsubscribe(channels: string, listener?: Listener, bufferMode?: true): Promise<void>;
  on(event: string, fn: (...args: any[]) => void): unknown;
  off(event: string, fn: (...args: any[]) => void): unknown;
  close(): Promise<void>;
  destroy(): void;
}

export type AnyRedisClient = NodeRedisClient | NodeRedisCluster;

export const isCluster = (c: AnyRedisClient): c is NodeRedisCluster => 'masters' in c || 'slots' in c;

export interface LinkOptions {
  /** The client; `owned`: we connected it and close it. */
  readonly client: AnyRedisClient;
  readonly owned: boolean;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  readonly probeInterval: number;
  readonly onUp: () => void;
  readonly onDown: (cause: Error) => void;
  readonly onResubscribed: () => void;
}

export type LinkState = 'connecting' | 'up' | 'down' | 'closed';

export class RedisLink {
  readonly #o: LinkOptions;
  readonly #client: AnyRedisClient;
  /** The subscriber: the cluster client itself, or our duplicate of a single-server client. */
  #sub: AnyRedisClient | undefined = undefined;
  #state: LinkState = 'connecting';
  /** Why the link is down (the cause of the errors raised meanwhile). */
  #downCause: Error | undefined = undefined;
  #probe: NodeJS.Timeout | undefined = undefined;
  /** The first connection (client, version, subscriber); kept while it runs, retried after a failure. */
  #connecting: Promise<void> | undefined = undefined;
  /** 'SPUBLISH' on Redis 7+, else 'PUBLISH'. */
  #pubCmd = 'SPUBLISH';
  /** The subscriber has been ready once: a later `ready` is a reconnection. */
  #subReadyOnce = false;
  readonly #listeners: [string, (...args: any[]) => void][] = [];
  readonly #subListeners: [string, (...args: any[]) => void][] = [];

  constructor(options: LinkOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#listen(this.#client, this.#listeners, {
      error: (err: Error) => this.#down(err),
      'node-error': (err: Error) => this.#down(err),
      reconnecting: () => this.#down(new Error('connection lost; reconnecting')),
      ready: () => this.#tryUp(),
      'node-ready': () => this.#tryUp(),
    });
  }

  get state(): LinkState {
    return this.#state;
  }

  get up(): boolean {
    return this.#state === 'up';
  }

  /** The publish command the scripts use. */
  get pubCmd(): string {
    return this.#pubCmd;
  }

  /**
   * Connects (if the client is ours) and the subscriber. Rejects with BackendUnavailableError
   * when that takes longer than connectTimeout; the connection keeps being tried meanwhile,
   * and the link comes up (firing `onUp`) when it succeeds.
   */
  start(): Promise<void> {
    if (this.#state === 'up') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new BackendUnavailableError('redis', 'the backend is closed'));
    this.#connecting ??= this.#connect().then(
      () => {
        if (this.#state === 'closed') return;
        const wasDown = this.#state === 'down';
        this.#state = 'up';
        this.#downCause = undefined;
        if (wasDown) this.#o.onUp();
      },
      (err: unknown) => {
        this.#connecting = undefined; // the next start() tries again
        throw err;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackendUnavailableError('redis', `no connection within connectTimeout (${this.#o.connectTimeout} ms)`)), this.#o.connectTimeout);
    });
    return Promise.race([this.#connecting, timeout]).then(
      () => clearTimeout(timer),
      (err: unknown) => {
        clearTimeout(timer);
        const cause = err instanceof BackendUnavailableError ? err : new BackendUnavailableError('redis', 'could not connect', { cause: err });
        if (this.#state === 'connecting') {
          this.#state = 'down';
          this.#downCause = cause;
          this.#o.onDown(cause);
          this.#schedulePing();
        }
        throw cause;
      },
    );
  }

  async #connect(): Promise<void> {
    if (this.#o.owned && !this.#client.isOpen) await this.#client.connect();
    const info = String(await this.#send(['INFO', 'server'], undefined, this.#o.connectTimeout));
    const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? '7');
    this.#pubCmd = major >= 7 ? 'SPUBLISH' : 'PUBLISH';
    if (this.#sub) return;
    if (isCluster(this.#client)) {
      this.#sub = this.#client;
      return;
    }
    const sub = this.#client.duplicate();
    this.#sub = sub;
    this.#listen(sub, this.#subListeners, {
      // A lost subscriber does not stop commands: it reconnects, resubscribes, and the
      // resync on its `ready` brings what it missed meanwhile.
      error: () => undefined,
      ready: () => {
        if (this.#subReadyOnce) this.#o.onResubscribed();
        this.#subReadyOnce = true;
      },
    });
    await sub.connect();
  }

  /** Subscribes `listener` to `channel` (sharded on Redis 7+). */
  async subscribe(channel: string, listener: Listener): Promise<void> {
    await this.start();
    const sub = this.#sub!;
    if (this.#pubCmd === 'SPUBLISH') await sub.sSubscribe(channel, listener, true);
    else await (sub as NodeRedisClient).subscribe(channel, listener, true);
  }

  async unsubscribe(channel: string, listener: Listener): Promise<void> {
    const sub = this.#sub;
    if (!sub) return;
    if (this.#pubCmd === 'SPUBLISH') await sub.sUnsubscribe(channel, listener, true);
    else await (sub as NodeRedisClient).unsubscribe(channel, listener, true);
  }

  /**
   * Runs `script` with `keys` (all in one slot) and `args`. Fails at once with
   * BackendUnavailableError while the link is down; a command with no reply within
   * commandTimeout takes the link down.
   */
  async eval(script: Script, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<unknown> {
    if (this.#state === 'closed') throw new BackendUnavailableError('redis', 'the backend is closed');
    if (this.#state === 'connecting') await this.start();
    else if (this.#state !== 'up') throw new BackendUnavailableError('redis', 'not connected', { cause: this.#downCause });
    const tail: Args = [String(keys.length), ...keys, ...args];
    try {
      return await this.#send(['EVALSHA', script.sha, ...tail], keys[0]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw this.#classify(err);
    }
    try {
      return await this.#send(['EVAL', script.source, ...tail], keys[0]);
    } catch (err) {
      throw this.#classify(err);
    }
  }

  #send(args: Args, firstKey: string | undefined, timeout = this.#o.commandTimeout): Promise<unknown> {
    const options = { timeout, rejectInFlight: true, typeMapping: { [BLOB_STRING]: Buffer } };
    const c = this.#client;
    const sent = isCluster(c) ? c.sendCommand(firstKey, false, args, options) : c.sendCommand(args, options);
    // Our own deadline as well: clients without `rejectInFlight` (before node-redis 6) would
    // otherwise wait forever for the reply of a stopped server.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackendUnavailableError('redis', `no reply within ${timeout} ms`)), timeout + 50);
    });
    sent.catch(() => undefined);
    return Promise.race([sent, late]).finally(() => clearTimeout(timer));
  }

  /** A reply error of a script is a bug, thrown as it is; anything else means Redis is not there. */
  #classify(err: unknown): Error {
    if (err instanceof BackendUnavailableError) return err;
    const e = err instanceof Error ? err : new Error(String(err));
    const replyError = /Error$/.test(e.name) && /^(ERR|WRONGTYPE|NOPERM|NOAUTH|WRONGPASS)\b/.test(e.message);
    if (replyError) return e;
    this.#down(e);
    return new BackendUnavailableError('redis', e.message || e.name, { cause: e });
  }

  #down(cause: Error): void {
    this.#downCause = cause;
    // Before the first connection, start() decides (its timeout); after close, nothing does.
    if (this.#state !== 'up') return;
    this.#state = 'down';
    this.#o.onDown(cause);
    this.#schedulePing();
  }

  #schedulePing(): void {
    if (this.#probe || this.#state !== 'down') return;
    this.#probe = setTimeout(() => {
      this.#probe = undefined;
      this.#ping();
    }, this.#o.probeInterval);
    this.#probe.unref?.();
  }

  #ping(): void {
    if (this.#state !== 'down') return;
    // Never connected yet: the first connection brings the link up when it completes.
    if (!this.#sub) {
      if (!this.#connecting) this.start().catch(() => undefined);
      this.#schedulePing();
      return;
    }
    this.#send(['PING'], undefined).then(
      () => this.#markUp(),
      (err: unknown) => {
        this.#downCause = err instanceof Error ? err : this.#downCause;
        this.#schedulePing();
      },
    );
  }

  /** The client says it is ready again: check with a PING (a ready event on one Cluster node says little of the others). */
  #tryUp(): void {
    if (this.#state !== 'down') return;
    clearTimeout(this.#probe);
    this.#probe = undefined;
    this.#ping();
  }

  #markUp(): void {
    if (this.#state !== 'down') return;
    this.#state = 'up';
    this.#downCause = undefined;
    this.#o.onUp();
  }

  #listen(c: AnyRedisClient, into: [string, (...args: any[]) => void][], handlers: Record<string, (...args: any[]) => void>): void {
    for (const [event, fn] of Object.entries(handlers)) {
      c.on(event, fn);
      into.push([event, fn]);
    }
  }

  /** Stops the probe; closes what we opened; detaches from a client handed in. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#probe);
    this.#probe = undefined;
    const sub = this.#sub;
    for (const [event, fn] of this.#listeners) this.#client.off(event, fn);
    if (sub && sub !== this.#client) {
      // Ours: its listeners stay until it is closed (an error while closing must be heard).
      await closeClient(sub);
      for (const [event, fn] of this.#subListeners) sub.off(event, fn);
    }
    if (this.#o.owned) await closeClient(this.#client);
  }
}

async function closeClient(c: AnyRedisClient): Promise<void> {
  // Errors of a closing client are of no interest, but unheard 'error' events would throw.
  const ignore = (): void => undefined;
  c.on('error', ignore);
  try {
    if (c.isOpen) await Promise.race([c.close(), new Promise((r) => setTimeout(r, 1000).unref?.())]);
  } catch {
    // closing a broken connection
  }
  try {
    c.destroy();
  } catch {
    // already closed
  }
}
