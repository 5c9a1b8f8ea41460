// What the mesh coordination of the store (./backends/mesh.ts, ./replication.ts) needs from its
// node: the public node API (spawn, ref, nodes, name), process groups (API.md §3) and global
// locks (API.md §4). Declared here as the narrow port that code is written against, so it
// reads as what it uses.
import type { ActorRefData } from '../actors/ref.js';
import type { Node } from '../node.js';

/** The part of `node.pg` the mesh coordination uses. */
export interface PgPort {
  join(group: string, ref: ActorRefData): void;
  leave(group: string, ref: ActorRefData): void;
  getMembers(group: string): readonly ActorRefData[];
}

/** The part of `node.global` the mesh coordination uses (`signal` withdraws a request still queued). */
export interface GlobalPort {
  trans<T>(resource: string, fn: (lock: { readonly token: number }) => Promise<T>, options?: { nodes?: string[]; signal?: AbortSignal }): Promise<T>;
}

/** A node with its process groups and lock service. */
export type StoreNode = Node & { readonly pg: PgPort; readonly global: GlobalPort };

/** The node as the mesh coordination sees it. */
export function storeNode(node: Node): StoreNode {
  return node as unknown as StoreNode;
}

/** Throws unless the node has process groups and global locks (cluster scope needs both). */
export function requireCluster(node: StoreNode): void {
  const n = node as Partial<StoreNode>;
  if (typeof n.pg?.join !== 'function' || typeof n.global?.trans !== 'function') {
    throw new Error(`node ${node.name} has no process groups or global locks (node.pg / node.global)`);
  }
}
