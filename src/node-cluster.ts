// node:cluster embedding: a primary and its workers form one cluster with no port, seed or
// cookie to configure by hand.
//
//   import cluster from 'node:cluster';
//   const node = await startClusterNode();         // same call in the primary and in workers
//   if (cluster.isPrimary) for (let i = 0; i < 4; i++) cluster.fork();
//
// - The primary's node listens on 127.0.0.1, port 0, with the given cookie or a random one,
//   and answers each worker's JOIN over the cluster IPC channel (private to the machine)
//   with a name, the primary's address as seed, the cookie and the primary's timing options.
// - Each worker listens on 127.0.0.1, port 0 (so its siblings can dial it), and joins
//   through the primary; it meets every sibling by membership gossip.
// - Names are slots, not worker ids: a worker gets `<primary name>-w<slot>`, the lowest slot
//   no live worker holds. A worker that dies frees its slot, so the worker the primary forks
//   in its place gets the same name and rejoins as a new incarnation of it (the others see
//   `nodedown` then `nodeup`, its locks released, its groups left).
// - A worker asks again every JOIN_RETRY_MS until the primary answers (the primary may call
//   startClusterNode after forking), and gives up after `joinTimeout`.
import cluster, { type Worker } from 'node:cluster';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { InvalidOptionError } from './errors.js';
import { startNode, type Node, type NodeOptions } from './node.js';

/** Options of `startClusterNode`: those of `startNode` except where to listen and whom to join. */
export interface ClusterNodeOptions extends Omit<NodeOptions, 'host' | 'port' | 'seeds' | 'advertise' | 'discovery'> {
  /** Milliseconds a worker waits for the primary's answer. @default 30000 */
  joinTimeout?: number;
}

/** The key of this module's messages on the cluster IPC channel (other messages are left alone). */
export const CLUSTER_MESSAGE_KEY = 'expirable-store:cluster';
/** Milliseconds between a worker's JOIN requests while the primary does not answer. */
export const JOIN_RETRY_MS = 500;
export const DEFAULT_JOIN_TIMEOUT = 30_000;

/** What the primary tells a worker. */
interface JoinAnswer {
  [CLUSTER_MESSAGE_KEY]: 'welcome';
  name: string;
  seed: string;
  cookie: string;
  timing: Pick<NodeOptions, 'heartbeatInterval' | 'failureTimeout' | 'callTimeout' | 'handshakeTimeout' | 'maxFrameSize'>;
}

/**
 * Starts this process's node of a node:cluster application: in the primary, the node every
 * worker joins; in a worker, a node that joins the primary's cluster under a stable name
 * (its slot). Call it in the primary and in every worker. See docs/deploying.md.
 */
export function startClusterNode(options: ClusterNodeOptions = {}): Promise<Node> {
  if (options === null || typeof options !== 'object') return Promise.reject(new InvalidOptionError('options', 'an object', options));
  for (const key of ['host', 'port', 'seeds', 'advertise', 'discovery'] as const) {
    if ((options as NodeOptions)[key] !== undefined) {
      return Promise.reject(new InvalidOptionError(key, 'omitted in startClusterNode (the cluster wires itself on 127.0.0.1)', (options as NodeOptions)[key]));
    }
  }
  const { joinTimeout = DEFAULT_JOIN_TIMEOUT } = options;
  if (typeof joinTimeout !== 'number' || !(joinTimeout > 0)) return Promise.reject(new InvalidOptionError('joinTimeout', 'a positive number of milliseconds', joinTimeout));
  return cluster.isPrimary ? startPrimary(options) : startWorkerNode(options, joinTimeout);
}

async function startPrimary(options: ClusterNodeOptions): Promise<Node> {
  const { joinTimeout: _, ...nodeOptions } = options;
  void _;
  const cookie = options.cookie ?? randomBytes(16).toString('hex');
  const name = options.name ?? `${hostname().replace(/[^\w.-]/g, '_').slice(0, 64) || 'host'}-${process.pid}`;
  const node = await startNode({ ...nodeOptions, name, cookie, host: '127.0.0.1', port: 0 });
  /** Slot held by each live worker (by worker id). */
  const slotOf = new Map<number, number>();
  const freeSlot = (): number => {
    const taken = new Set(slotOf.values());
    let s = 1;
    while (taken.has(s)) s++;
    return s;
  };
  const timing: JoinAnswer['timing'] = {};
  for (const key of ['heartbeatInterval', 'failureTimeout', 'callTimeout', 'handshakeTimeout', 'maxFrameSize'] as const) {
    if (options[key] !== undefined) timing[key] = options[key];
  }
  const onMessage = (worker: Worker, msg: unknown): void => {
    if (!isOurs(msg) || msg[CLUSTER_MESSAGE_KEY] !== 'join') return;
    // A repeated JOIN (the first answer crossed it) gets the same slot.
    let slot = slotOf.get(worker.id);
    if (slot === undefined) {
      slot = freeSlot();
      slotOf.set(worker.id, slot);
    }
    const answer: JoinAnswer = { [CLUSTER_MESSAGE_KEY]: 'welcome', name: `${name}-w${slot}`, seed: node.address!, cookie, timing };
    if (worker.isConnected()) worker.send(answer);
  };
  const onExit = (worker: Worker): void => {
    slotOf.delete(worker.id);
  };
  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  const close = node.close.bind(node);
  node.close = () => {
    cluster.off('message', onMessage);
    cluster.off('exit', onExit);
    return close();
  };
  return node;
}

async function startWorkerNode(options: ClusterNodeOptions, joinTimeout: number): Promise<Node> {
  if (!process.send) throw new Error('startClusterNode: this process is neither a cluster primary nor a cluster worker');
  const answer = await new Promise<JoinAnswer>((resolve, reject) => {
    const ask = (): void => {
      process.send!({ [CLUSTER_MESSAGE_KEY]: 'join' });
    };
    const retry = setInterval(ask, JOIN_RETRY_MS);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`startClusterNode: the primary did not answer within ${joinTimeout} ms (does it call startClusterNode?)`));
    }, joinTimeout);
    const onMessage = (msg: unknown): void => {
      if (!isOurs(msg) || msg[CLUSTER_MESSAGE_KEY] !== 'welcome') return;
      done();
      resolve(msg as unknown as JoinAnswer);
    };
    const done = (): void => {
      clearInterval(retry);
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    process.on('message', onMessage);
    ask();
  });
  const { joinTimeout: _, ...nodeOptions } = options;
  void _;
  return startNode({
    ...answer.timing,
    ...nodeOptions,
    name: options.name ?? answer.name,
    cookie: answer.cookie,
    host: '127.0.0.1',
    port: 0,
    seeds: [answer.seed],
  });
}

function isOurs(msg: unknown): msg is Record<string, unknown> {
  return typeof msg === 'object' && msg !== null && CLUSTER_MESSAGE_KEY in msg;
}
