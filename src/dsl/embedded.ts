// The embedded default node: a standalone node started on first use and shared by every
// store defined without a `node` option. `defineExpirables` is synchronous; `startNode` is
// not, so the node starts when a call first needs it.
import { startNode, type Node } from '../node.js';

let embedded: Promise<Node> | undefined;

/** True once a store asked for the embedded node (a store on a backend never does). */
export function embeddedNodeStarted(): boolean {
  return embedded !== undefined;
}

/** The embedded node, started on the first call. */
export function embeddedNode(): Promise<Node> {
  return (embedded ??= startNode());
}
