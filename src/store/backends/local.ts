// The coordination of local-scope expirables (see ../backend.ts for the port): nothing is
// shared with other processes. Writes of one entry are serialized through a chain on this
// node, in call order; the token is a counter of this expirable raised above the entry's
// version; there are no peers to learn from, tell or clear, and the only holder is this node.
import type { Coordination, Holding, PeerSnapshot } from '../backend.js';

export interface LocalContext {
  /** Resolves when the node is up (the embedded one starts on first use). */
  ready(): Promise<unknown>;
  /** The node's name, once up. */
  self(): string | undefined;
}

export class LocalCoordination implements Coordination {
  readonly #ctx: LocalContext;
  /** Tail of each entry's chain; dropped when the last write queued on it ends. */
  readonly #tails = new Map<string, Promise<void>>();
  #version = 0;

  constructor(ctx: LocalContext) {
    this.#ctx = ctx;
  }

  self(): string | undefined {
    return this.#ctx.self();
  }

  async exclusive<T>(_name: string, _canon: string, resource: string, current: number, fn: (token: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    // The place in the chain is taken synchronously, so writes run in call order.
    const prev = this.#tails.get(resource);
    let release!: () => void;
    const tail = new Promise<void>((r) => (release = r));
    this.#tails.set(resource, tail);
    try {
      await prev;
      if (signal?.aborted) throw new Error('withdrawn: the callers were answered');
      await this.#ctx.ready();
      return await fn(Math.max(++this.#version, current + 1));
    } finally {
      if (this.#tails.get(resource) === tail) this.#tails.delete(resource);
      release();
    }
  }

  learn(): Promise<PeerSnapshot | undefined> {
    return Promise.resolve(undefined);
  }

  publish(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  roundFailed(): Promise<void> {
    return Promise.resolve();
  }

  refreshFailed(): void {}

  clear(): Promise<void> {
    return Promise.resolve();
  }

  keys(): Promise<Map<string, unknown>> {
    return Promise.resolve(new Map());
  }

  clearAll(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  hold(): Holding | undefined {
    return undefined;
  }

  /** The only holder is this node. */
  peersHolding(): boolean {
    return false;
  }

  holders(_name: string, _canon: string, _resource: string, holdsHere: boolean): string[] {
    const self = this.#ctx.self();
    return holdsHere && self !== undefined ? [self] : [];
  }
}
