// Agent: an actor that holds one state and is driven by functions, as Elixir's Agent.
// Functions run inside the agent, one at a time; a function that throws crashes the agent
// (its caller gets the error, later callers ActorDownError). Functions do not cross the
// mesh, so an Agent is for use on its own node.
import { ActorDownError } from '../errors.js';
import type { Behavior, CallOptions } from './behavior.js';
import type { ActorRef } from './ref.js';

type AgentCall<S> =
  | { op: 'get'; fn: (state: S) => unknown }
  | { op: 'update'; fn: (state: S) => S | Promise<S> }
  | { op: 'getAndUpdate'; fn: (state: S) => readonly [unknown, S] | Promise<readonly [unknown, S]> };

type AgentCast<S> = { op: 'cast'; fn: (state: S) => S | Promise<S> };

/** Anything that can spawn an actor: a node or its actor system. */
export interface Spawner {
  spawn<S, C, R, K>(behavior: Behavior<S, C, R, K>): ActorRef<C, R, K>;
}

const identity = <T>(s: T): T => s;

export class Agent<S> {
  /** The agent's actor. */
  readonly ref: ActorRef<AgentCall<S>, unknown, AgentCast<S>>;

  private constructor(ref: ActorRef<AgentCall<S>, unknown, AgentCast<S>>) {
    this.ref = ref;
  }

  /** Starts an agent; resolves once `init` has run, rejects with what `init` threw. */
  static async start<S>(node: Spawner, init: () => S | Promise<S>): Promise<Agent<S>> {
    if (typeof init !== 'function') throw new TypeError(`Expected \`init\` to be a function, got ${typeof init}`);
    const ref = node.spawn<S, AgentCall<S>, unknown, AgentCast<S>>({
      init,
      handleCall: async (msg, state) => {
        switch (msg.op) {
          case 'get':
            return { reply: await msg.fn(state), state };
          case 'update':
            return { reply: undefined, state: await msg.fn(state) };
          case 'getAndUpdate': {
            const pair = await msg.fn(state);
            if (!Array.isArray(pair) || pair.length !== 2) {
              throw new TypeError('Agent.getAndUpdate: the function must return [reply, nextState]');
            }
            return { reply: pair[0], state: pair[1] as S };
          }
        }
      },
      handleCast: (msg, state) => msg.fn(state),
    });
    const agent = new Agent(ref);
    try {
      await ref.call({ op: 'get', fn: () => undefined }, { timeout: Infinity });
    } catch (err) {
      if (err instanceof ActorDownError && typeof err.reason === 'object') throw err.reason.crashed;
      throw err;
    }
    return agent;
  }

  /** The state, or `fn(state)` computed inside the agent. */
  get(): Promise<S>;
  get<T>(fn: (state: S) => T | Promise<T>, options?: CallOptions): Promise<T>;
  get(fn: (state: S) => unknown = identity, options?: CallOptions): Promise<unknown> {
    return this.ref.call({ op: 'get', fn }, options);
  }

  /** Replaces the state with `fn(state)`. */
  async update(fn: (state: S) => S | Promise<S>, options?: CallOptions): Promise<void> {
    await this.ref.call({ op: 'update', fn }, options);
  }

  /** `fn` returns `[reply, nextState]`; resolves with `reply`. */
  getAndUpdate<T>(fn: (state: S) => readonly [T, S] | Promise<readonly [T, S]>, options?: CallOptions): Promise<T> {
    return this.ref.call({ op: 'getAndUpdate', fn }, options) as Promise<T>;
  }

  /** Replaces the state with `fn(state)` without waiting. */
  cast(fn: (state: S) => S | Promise<S>): void {
    this.ref.cast({ op: 'cast', fn });
  }

  /** Stops the agent. */
  stop(): Promise<void> {
    return this.ref.stop();
  }
}
