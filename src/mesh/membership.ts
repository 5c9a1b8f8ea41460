// Cluster membership as the layers above the transport see it: who I am, which peers are
// connected now, and `nodeup` / `nodedown` events, each exactly once per transition.
// Process groups and global locks are written against this interface only, so they run the
// same on a standalone node (a cluster of one) and on the TCP mesh.
import { EventEmitter } from 'node:events';

export interface MembershipEvents {
  nodeup: [name: string];
  nodedown: [name: string, reason: string];
}

export interface Membership {
  /** This node's name. */
  readonly self: string;
  /** Names of the peers connected now, self excluded. */
  nodes(): string[];
  on<E extends keyof MembershipEvents>(event: E, listener: (...args: MembershipEvents[E]) => void): this;
  off<E extends keyof MembershipEvents>(event: E, listener: (...args: MembershipEvents[E]) => void): this;
}

/** The membership of a standalone node: no peers, no events. */
export class StandaloneMembership extends EventEmitter<MembershipEvents> implements Membership {
  readonly self: string;
  constructor(self: string) {
    super();
    this.self = self;
  }
  nodes(): string[] {
    return [];
  }
}
