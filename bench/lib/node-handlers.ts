// The start of a bench peer's node and the wait for its peers, as the mesh peers offer them
// to the bench process (`startNode`, `waitPeers` requests): one definition for every peer.
import { startNode, type Node, type NodeOptions } from '../../src/index.js';

/** Resolves with the connected nodes once `node` has at least `n` of them. */
export async function untilPeers(node: Node, n: number): Promise<string[]> {
  while (node.nodes().length < n) await new Promise<void>((r) => node.once('nodeup', () => r()));
  return node.nodes();
}

/** `startNode` (handing the node to `started`) and `waitPeers` request handlers, on the node `current()` returns. */
export function nodeHandlers(started: (node: Node) => void, current: () => Node | undefined) {
  return {
    async startNode(options: NodeOptions): Promise<{ name: string; address: string | undefined }> {
      const node = await startNode(options);
      started(node);
      return { name: node.name, address: node.address };
    },
    /** Resolves once `n` peers are connected. */
    waitPeers({ n }: { n: number }): Promise<string[]> {
      return untilPeers(current()!, n);
    },
  };
}
