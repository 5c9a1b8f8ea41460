// The link between a node and a worker-thread node it started: what travels to the worker
// at its start, and the worker's side of joining (the parent's side is ./worker.ts).
//
//   parent (startWorker)                                  worker thread (startNode)
//     setEnvironmentData(KEY, id); new Worker(script)
//     postMessage(LinkData{id, ports})  ─────────────▶    getEnvironmentData(KEY) === id?
//                                                          receiveMessageOnPort(parentPort)
//                                      ◀── control ─────  { op: 'ready' }
//     attach(PortTransport, 'accept')  ◀── link ────────  attach(PortTransport, 'dial'): HELLO…
//     … the usual cookie handshake over the link port; nodeup on both sides …
//     (for each other worker Y of this parent, once this one is up:)
//     { op: 'link', Y, port, 'dial' }  ─── control ────▶  attach(PortTransport, 'dial') to Y
//     (Y gets the other end with role 'accept')
//     { op: 'close' }                  ─── control ────▶  node.close() (BYE to every peer)
//                                      ◀── control ─────  { op: 'closed' }
//
// Invariants:
// - The link message is the first message on the worker's parentPort (posted right after
//   `new Worker`), and is taken synchronously by the worker's first `startNode()`, before
//   any user listener on parentPort can see it. The environment-data marker, cleared at
//   once for threads the worker starts itself, says whether there is one to take, so a
//   worker not started by `startWorker` never has a message taken from it.
// - The worker's node gets the parent's cookie, TLS material and timings, the name the
//   parent chose, and listens on port 0 of the parent's host when the parent listens (so
//   the rest of the cluster can dial it). It learns the other members from the parent
//   (MEMBERS) and dials them like any node. Workers of one parent are linked to each other
//   over ports the parent hands out ('link'), so they form a full mesh even when none of
//   them listens; if a worker also dials a sibling over TCP, the mesh keeps one link
//   (duplicate and simultaneous-dial rules of the handshake).
//
// Failure handling: a link that fails before nodeup makes `startNode` in the worker
// reject (the parent's `startWorker` rejects when the thread then exits, or at its
// timeout). After nodeup the link is the worker's tie to its parent: if it goes down, the
// parent sees nodedown; the worker thread is not killed by it.
import { getEnvironmentData, isMainThread, parentPort, receiveMessageOnPort, setEnvironmentData, type MessagePort } from 'node:worker_threads';
import { InvalidOptionError } from '../errors.js';
import type { Mesh } from './mesh.js';
import { PortTransport } from './port-transport.js';
import type { TlsMaterial } from './tls-transport.js';

/** Environment-data key holding the id of the link message waiting for the worker. */
export const LINK_ENV_KEY = 'expirable-store:worker-link';

/** What the worker's node takes from its parent unless its own `startNode` options say otherwise. */
export interface WorkerNodeDefaults {
  cookie: string;
  host?: string;
  /** Listen on port 0 of `host` (when the parent listens). */
  listen: boolean;
  tls?: TlsMaterial;
  heartbeatInterval?: number;
  failureTimeout?: number;
  maxFrameSize?: number;
  handshakeTimeout?: number;
  callTimeout?: number;
}

/** The first message posted to a worker started by `startWorker`. */
export interface LinkData {
  kind: typeof LINK_ENV_KEY;
  id: string;
  /** The parent node's name. */
  parent: string;
  /** The name the parent chose for the worker's node. */
  name: string;
  /** Carries the mesh frames (a PortTransport on each side). */
  port: MessagePort;
  /** Carries ready / close / closed. */
  control: MessagePort;
  defaults: WorkerNodeDefaults;
}

/** Messages on the control port. */
export type ControlMessage =
  | { op: 'ready' }
  | { op: 'close' }
  | { op: 'closed' }
  /** From the parent: a port to another of its workers, to run the handshake over as `role`. */
  | { op: 'link'; peer: string; port: MessagePort; role: 'dial' | 'accept' };

let taken = false;

/**
 * The link left for this thread by `startWorker`, taken once (undefined in the main thread,
 * in a worker not started by `startWorker`, and on every call after the first).
 */
export function takeWorkerLink(): WorkerLink | undefined {
  if (taken || isMainThread || !parentPort) return undefined;
  const id = getEnvironmentData(LINK_ENV_KEY);
  if (typeof id !== 'string') return undefined;
  taken = true;
  // Threads this worker starts must not believe a link waits for them.
  setEnvironmentData(LINK_ENV_KEY, undefined);
  const got = receiveMessageOnPort(parentPort);
  const data = got?.message as LinkData | undefined;
  if (!data || data.kind !== LINK_ENV_KEY || data.id !== id) {
    throw new Error('the link to the parent node was not found: call startNode() before reading messages from parentPort');
  }
  return new WorkerLink(data);
}

/** The worker's side of the link. */
export class WorkerLink {
  readonly parent: string;
  readonly name: string;
  readonly defaults: WorkerNodeDefaults;
  readonly #data: LinkData;

  constructor(data: LinkData) {
    this.#data = data;
    this.parent = data.parent;
    this.name = data.name;
    this.defaults = data.defaults;
  }

  /** The worker's `startNode` options: its own, over the parent's defaults; name and cookie are the parent's. */
  nodeOptions<T extends { name?: string | undefined; cookie?: string | undefined }>(given: T): T {
    if (given.name !== undefined && given.name !== this.name) {
      throw new InvalidOptionError('name', `omitted or "${this.name}" in a worker started by startWorker (the parent names it)`, given.name);
    }
    if (given.cookie !== undefined && given.cookie !== this.defaults.cookie) {
      throw new InvalidOptionError('cookie', "omitted in a worker started by startWorker (it is the parent's)", '<another cookie>');
    }
    const { listen, ...defaults } = this.defaults;
    return { ...defaults, ...(listen ? { port: 0 } : {}), ...given, name: this.name, cookie: this.defaults.cookie };
  }

  /**
   * Links `mesh` to the parent over the port and resolves once the parent is up; serves the
   * parent's close request with `closeNode`. Rejects if the link fails first.
   */
  join(mesh: Mesh, closeNode: () => Promise<void>): Promise<void> {
    const { port, control, parent, defaults } = this.#data;
    control.on('message', (m: ControlMessage) => {
      if (m?.op === 'link') {
        // Another worker of the same parent: linked over a port, no socket between threads.
        const sibling = new PortTransport(m.port, {
          remote: `worker ${m.peer}`,
          peerGoneReason: 'worker_exited',
          ...(defaults.maxFrameSize === undefined ? {} : { maxFrameSize: defaults.maxFrameSize }),
        });
        mesh.attach(sibling, m.role);
        return;
      }
      if (m?.op !== 'close') return;
      void closeNode()
        .catch(() => {})
        .finally(() => control.postMessage({ op: 'closed' } satisfies ControlMessage));
    });
    // The control port must not keep the thread alive once the node is closed.
    control.unref();
    return new Promise<void>((resolve, reject) => {
      let up = false;
      const onUp = (n: string): void => {
        if (n !== parent) return;
        up = true;
        mesh.off('nodeup', onUp);
        resolve();
      };
      mesh.on('nodeup', onUp);
      const transport = new PortTransport(port, {
        remote: `parent ${parent}`,
        ...(defaults.maxFrameSize === undefined ? {} : { maxFrameSize: defaults.maxFrameSize }),
        onEnded: (info) => {
          if (up) return;
          mesh.off('nodeup', onUp);
          reject(new Error(`worker node ${this.name} could not link to its parent ${parent}: ${info.reason}`));
        },
      });
      control.postMessage({ op: 'ready' } satisfies ControlMessage);
      mesh.attach(transport, 'dial');
    });
  }
}
