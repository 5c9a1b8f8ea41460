// Nodes of this test process joined over real TCP links (port 0): each cluster gets fresh
// names and a cookie of its own, and resolves once every node is up with every other one.
//
//   const tcp = new TcpNodes('pg');
//   afterEach(() => tcp.closeAll());
//   const [a, b] = await tcp.cluster(2, { heartbeatInterval: 100 });
import { startNode, type Node, type NodeOptions } from '../../src/node.js';

let seq = 0;

/** Resolves once every node of `all` has seen every other one come up. */
export async function fullMesh(all: readonly Node[]): Promise<void> {
  await Promise.all(all.flatMap((a) => all.filter((b) => b !== a).map((b) => a.onNodeUp(b.name))));
}

export class TcpNodes {
  /** Every node started here and not closed yet (`closeAll` closes them). */
  readonly live: Node[] = [];

  constructor(readonly prefix: string) {}

  /** `size` nodes seeded with the first one, each connected to every other. */
  async cluster(size: number, options: Partial<NodeOptions> = {}): Promise<Node[]> {
    const tag = `${this.prefix}${process.pid}x${++seq}`;
    const first = await startNode({ ...options, name: `${tag}-0`, port: 0, cookie: `cookie-${tag}` });
    this.live.push(first);
    const rest = await Promise.all(
      Array.from({ length: size - 1 }, (_, i) => startNode({ ...options, name: `${tag}-${i + 1}`, port: 0, cookie: `cookie-${tag}`, seeds: [first.address!] })),
    );
    this.live.push(...rest);
    const all = [first, ...rest];
    await fullMesh(all);
    return all;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.live.splice(0).map((n) => n.close()));
  }
}
