// The echo actor and the sequential call loop a bench peer offers for its mesh round-trip
// floor (`spawnEcho` on one node, `callLoop` from another): one definition for every peer
// that measures the floor this way.
import type { Node } from '../../src/index.js';
import type { ActorRefData } from '../../src/actors/ref.js';
import { timedLoop } from './raw.js';

/** `spawnEcho` and `callLoop` request handlers on the peer's node, read when each runs. */
export function echoHandlers(node: () => Node | undefined) {
  return {
    spawnEcho(): ActorRefData {
      const ref = node()!.spawn({ init: () => null, handleCall: (msg: unknown, state: null) => ({ reply: msg, state }) });
      return { node: ref.node, id: ref.id };
    },
    /** Sequential remote calls of `ref` for `durationMs`: round trips in an HDR histogram (ns). */
    callLoop({ ref, durationMs }: { ref: ActorRefData; durationMs: number }) {
      const r = node()!.ref(ref);
      return timedLoop(() => r.call({ add: 2 }), durationMs);
    },
  };
}
