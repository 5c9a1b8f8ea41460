// `node:diagnostics_channel` events of the expirables. Payloads are built only when a
// channel has subscribers, so an unobserved store pays one boolean check per event.
import diagnostics_channel from 'node:diagnostics_channel';

/** Names of the channels, for `diagnostics_channel.subscribe(name, fn)`. */
export const expirableChannels = {
  /** A fetch function starts on this node: `{ namespace, name, key, node, mode }`. */
  fetchStart: 'expirable-store:fetch:start',
  /** A fetch succeeded: `{ namespace, name, key, node, mode, durationMs, version, expiresAt }`. */
  fetchEnd: 'expirable-store:fetch:end',
  /** A fetch failed: `{ namespace, name, key, node, mode, durationMs, error }`. */
  fetchFailure: 'expirable-store:fetch:failure',
  /**
   * A background refresh: `{ namespace, name, key, node, phase, ... }` with phase 'start',
   * 'skipped' (someone else refreshed), 'end', 'failure' (with `error` and `retryInMs`; the
   * value is kept), 'deferred' (a peer's attempt just failed and that peer retries first).
   */
  refresh: 'expirable-store:refresh',
  /** This node took a value: `{ namespace, name, key, node, from, version, how: 'push' | 'adopt' }`. */
  replicate: 'expirable-store:replicate',
  /** A value was dropped by `clear`: `{ namespace, name, key, node, version, origin: 'local' | 'remote' }`. */
  clear: 'expirable-store:clear',
  /**
   * A key that still held a valid value was dropped to stay within `maxKeys`:
   * `{ namespace, name, key, node, maxKeys }`. The next call of that key fetches (or asks a peer) again.
   */
  evict: 'expirable-store:evict',
} as const;

export type ExpirableChannel = keyof typeof expirableChannels;

const channels = Object.fromEntries(
  Object.entries(expirableChannels).map(([k, name]) => [k, diagnostics_channel.channel(name)]),
) as Record<ExpirableChannel, diagnostics_channel.Channel>;

/** Publishes `build()` on the channel if anyone listens. */
export function publish(channel: ExpirableChannel, build: () => object): void {
  const c = channels[channel];
  if (c.hasSubscribers) c.publish(build());
}
