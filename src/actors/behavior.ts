// The shape of an actor: what `spawn` takes. Types only.
import type { DownReason } from '../errors.js';

/** A reply and the next state, returned by `handleCall`. */
export interface Reply<S, R> {
  reply: R;
  state: S;
  noreply?: false | undefined;
}

/** No reply now: the handler keeps `from` and answers later with `from.reply()`. */
export interface NoReply<S> {
  noreply: true;
  state: S;
  reply?: undefined;
}

/** The caller of a `call`, for replying later (Erlang's `gen_server:reply/2`). */
export interface From<R> {
  /** Sends the reply; a second reply, or one after the caller gave up, is dropped. */
  reply(value: R): void;
  /** Fails the call with `error`; dropped likewise once settled. */
  fail(error: unknown): void;
}

export type MaybePromise<T> = T | Promise<T>;

export interface Behavior<S, C = never, R = never, K = never> {
  /** The initial state. Messages wait in the mailbox until it resolves; a throw crashes the actor. */
  init: () => MaybePromise<S>;
  /** Handles one `call` at a time; a throw crashes the actor and fails that call. */
  handleCall?: (msg: C, state: S, from: From<R>) => MaybePromise<Reply<S, R> | NoReply<S>>;
  /** Handles one `cast` at a time and returns the next state; a throw crashes the actor. */
  handleCast?: (msg: K, state: S) => MaybePromise<S>;
  /** Runs once when the actor stops or crashes (not when its node is killed). */
  terminate?: (reason: DownReason, state: S) => MaybePromise<void>;
}

export interface CallOptions {
  /** Milliseconds to wait for the reply; `Infinity` waits forever. @default the node's `callTimeout` */
  timeout?: number;
}

export interface SpawnOptions {
  /** A well-known id on this node (like Erlang's `register/2`): refs to it can be built from the node name alone. */
  name?: string;
}
