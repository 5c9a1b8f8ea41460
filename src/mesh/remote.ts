// Remote actors: the RemoteRouter the mesh plugs into the ActorSystem, and the serving side
// of the same messages.
//
// Messages (catalogue in ./protocol.ts):
// - CALL [callId, actorId, msg]   → REPLY [callId, value] | REPLY_ERROR [callId, WireError]
// - CAST [actorId, msg]            (no answer; dropped if the actor is gone, as in Erlang)
// - STOP [callId, actorId, reason] → REPLY [callId, null] once the actor is down
// - MONITOR [monitorId, actorId]   → DOWN [monitorId, reason] once; DEMONITOR [monitorId] cancels
//
// Invariants:
// - The message of a call or cast and the value of a reply go through `toWireValue`
//   (./codec.ts): a value that would not arrive as it left (a function, a class instance…)
//   is refused with a SerializationError naming where it is (`message.user.save is a
//   function`). A cast from the runtime's own services (`castPlain`: lock and pg messages,
//   plain data by construction) skips that walk. A message that cannot be encoded, or whose
//   frame would exceed the maximum frame size the peer announced in the handshake, fails
//   its call with SerializationError before anything is written (encoding and the size
//   check happen before the pending entry is made); a cast throws it. A reply that cannot be
//   encoded or is too large for the caller becomes a REPLY_ERROR with SerializationError, so
//   the caller learns why and the link (which the peer would close on an oversize frame)
//   stays up.
// - Replies are matched by callId in the map of the node they were sent to; a reply for a
//   call that already settled (timeout) finds nothing and is dropped.
// - When a node goes down, every pending call to it fails with NodeDownError and every
//   monitor of its actors fires 'noconnection', in one step, right after the mesh emits
//   `nodedown` (the mesh calls `nodeDown` after its listeners ran).
// - Calls served for a peer are not cancelled when it goes down (the actor still handles
//   them, as a local call whose caller gave up); their replies are dropped.
// - The serving side of a monitor is a local monitor, cancelled by DEMONITOR or when the
//   watching node goes down.
import { NodeDownError, ProtocolError, SerializationError, downReasonFromWire, downReasonToWire, fromWire, toWire, type DownReason, type WireError } from '../errors.js';
import type { ActorSystem, RemoteRouter } from '../actors/system.js';
import type { DownListener } from '../actors/actor.js';
import { CallSlot } from '../actors/call-slot.js';
import type { ActorRefData } from '../actors/ref.js';
import { encode, toWireValue } from './codec.js';
import { FRAME_HEADER_SIZE } from './framing.js';
import { Tag } from './protocol.js';

/** What the remote layer needs from the mesh. */
export interface RemoteLinks {
  /** Sends an encoded frame to `node`; false if it is not connected. */
  send(node: string, buf: Uint8Array): boolean;
  /** True if `node` is connected now. */
  isUp(node: string): boolean;
  /** The largest frame payload `node` accepts (told in the handshake), or undefined if not connected. */
  maxFrameSize(node: string): number | undefined;
}

type WireDownReason = string | { crashed: WireError };

export class Remote implements RemoteRouter {
  readonly #system: ActorSystem;
  readonly #links: RemoteLinks;
  #nextId = 0;
  /** Calls (and stops) waiting for a reply, per node: node → callId → slot. */
  readonly #pending = new Map<string, Map<number, CallSlot>>();
  /** Monitors of remote actors, per node: node → monitorId → listener. */
  readonly #monitors = new Map<string, Map<number, DownListener>>();
  /** Local monitors served for peers: node → their monitorId → cancel function. */
  readonly #served = new Map<string, Map<number, () => void>>();

  constructor(system: ActorSystem, links: RemoteLinks) {
    this.#system = system;
    this.#links = links;
  }

  // ---- caller side (RemoteRouter) ----

  call(ref: ActorRefData, msg: unknown, slot: CallSlot): void {
    const node = ref.node;
    if (!this.#links.isUp(node)) return slot.fail(new NodeDownError(node, 'noconnection'));
    const id = ++this.#nextId;
    let buf: Uint8Array;
    try {
      buf = encode([Tag.CALL, id, ref.id, toWireValue(msg, 'message')]);
      checkSize(this.#links, node, buf, `a call to ${ref.id}@${node}`);
    } catch (err) {
      return slot.fail(notSent(err, `a call to ${ref.id}@${node}`));
    }
    this.#track(node, id, slot);
    this.#links.send(node, buf);
  }

  cast(ref: ActorRefData, msg: unknown, plain = false): void {
    // Encode first: a cast that cannot be encoded throws at the caller, like a call.
    let buf: Uint8Array;
    try {
      buf = encode([Tag.CAST, ref.id, plain ? msg : toWireValue(msg, 'message')]);
      checkSize(this.#links, ref.node, buf, `a cast to ${ref.id}@${ref.node}`);
    } catch (err) {
      throw notSent(err, `a cast to ${ref.id}@${ref.node}`);
    }
    this.#links.send(ref.node, buf);
  }

  stop(ref: ActorRefData, reason: 'normal' | 'shutdown'): Promise<void> {
    if (!this.#links.isUp(ref.node)) return Promise.reject(new NodeDownError(ref.node, 'noconnection'));
    const id = ++this.#nextId;
    const slot = new CallSlot(ref, Infinity);
    this.#track(ref.node, id, slot);
    this.#links.send(ref.node, encode([Tag.STOP, id, ref.id, reason]));
    return slot.promise.then(() => undefined);
  }

  monitor(ref: ActorRefData, fn: DownListener): () => void {
    const node = ref.node;
    let fired = false;
    const once: DownListener = (reason) => {
      if (fired) return;
      fired = true;
      try {
        fn(reason);
      } catch (err) {
        // A throwing monitor callback must neither break the link nor skip the other monitors.
        queueMicrotask(() => {
          throw err;
        });
      }
    };
    if (!this.#links.isUp(node)) {
      queueMicrotask(() => once('noconnection'));
      return () => {
        fired = true;
      };
    }
    const id = ++this.#nextId;
    let map = this.#monitors.get(node);
    if (!map) this.#monitors.set(node, (map = new Map()));
    map.set(id, once);
    this.#links.send(node, encode([Tag.MONITOR, id, ref.id]));
    return () => {
      if (fired) return;
      fired = true;
      if (this.#monitors.get(node)?.delete(id)) this.#links.send(node, encode([Tag.DEMONITOR, id]));
    };
  }

  #track(node: string, id: number, slot: CallSlot): void {
    let map = this.#pending.get(node);
    if (!map) this.#pending.set(node, (map = new Map()));
    map.set(id, slot);
    const pending = map;
    slot.onSettle = () => pending.delete(id);
  }

  // ---- messages from a peer ----

  /** Handles one remote-actor message from `node`. */
  handle(node: string, msg: unknown[]): void {
    switch (msg[0]) {
      case Tag.CALL:
        return this.#serveCall(node, num(msg[1]), str(msg[2]), msg[3]);
      case Tag.REPLY:
        this.#pending.get(node)?.get(num(msg[1]))?.reply(msg[2]);
        return;
      case Tag.REPLY_ERROR:
        this.#pending.get(node)?.get(num(msg[1]))?.fail(fromWire(wireError(msg[2])));
        return;
      case Tag.CAST:
        this.#system.cast({ node: this.#system.name, id: str(msg[1]) }, msg[2]);
        return;
      case Tag.STOP:
        return this.#serveStop(node, num(msg[1]), str(msg[2]), msg[3] === 'shutdown' ? 'shutdown' : 'normal');
      case Tag.MONITOR:
        return this.#serveMonitor(node, num(msg[1]), str(msg[2]));
      case Tag.DEMONITOR: {
        const id = num(msg[1]);
        const served = this.#served.get(node);
        served?.get(id)?.();
        served?.delete(id);
        return;
      }
      case Tag.DOWN: {
        const id = num(msg[1]);
        const map = this.#monitors.get(node);
        const fn = map?.get(id);
        if (!fn) return;
        // Parse first: a malformed DOWN closes the link, and the monitor, still registered,
        // then fires 'noconnection' with the other monitors of that node.
        const reason = fromWireReason(msg[2]);
        map!.delete(id);
        fn(reason);
        return;
      }
      default:
        throw new ProtocolError('bad_message', `unknown message tag ${String(msg[0])} from ${node}`);
    }
  }

  /**
   * A frame from `node` whose payload did not decode (./connection.ts): fails only that
   * message when it is a call, a reply or a cast; false for anything else (the link closes).
   */
  undecodable(node: string, tag: number, id: number | undefined, err: Error): boolean {
    const why = `cannot be decoded on node ${this.#system.name}: ${err.message}`;
    switch (tag) {
      case Tag.CALL:
        if (id === undefined) return false;
        this.#links.send(node, encodeError(id, new SerializationError(`the message of a call from ${node} ${why}`, { cause: err })));
        return true;
      case Tag.REPLY:
      case Tag.REPLY_ERROR:
        if (id === undefined) return false;
        this.#pending.get(node)?.get(id)?.fail(new SerializationError(`the reply from ${node} ${why}`, { cause: err }));
        return true;
      case Tag.CAST:
        return true; // dropped, as a cast to a missing actor is
      default:
        return false;
    }
  }

  #serveCall(node: string, id: number, actorId: string, msg: unknown): void {
    this.#system.callLocal(actorId, msg, new ServedCall({ node: this.#system.name, id: actorId }, id, node, this.#links));
  }

  #serveStop(node: string, id: number, actorId: string, reason: 'normal' | 'shutdown'): void {
    this.#system.stop({ node: this.#system.name, id: actorId }, reason).then(
      () => this.#links.send(node, encode([Tag.REPLY, id, null])),
      (err) => this.#links.send(node, encodeError(id, err, this.#links.maxFrameSize(node))),
    );
  }

  #serveMonitor(node: string, id: number, actorId: string): void {
    let served = this.#served.get(node);
    if (!served) this.#served.set(node, (served = new Map()));
    const map = served;
    const cancel = this.#system.monitor({ node: this.#system.name, id: actorId }, (reason) => {
      if (!map.delete(id)) return;
      this.#links.send(node, encode([Tag.DOWN, id, toWireReason(reason)]));
    });
    map.set(id, cancel);
  }

  // ---- node down ----

  /** `node` went down: fail its pending calls, fire its monitors, drop what we served it. */
  nodeDown(node: string, reason: string): void {
    const pending = this.#pending.get(node);
    this.#pending.delete(node);
    if (pending) for (const slot of [...pending.values()]) slot.fail(new NodeDownError(node, reason));
    const monitors = this.#monitors.get(node);
    this.#monitors.delete(node);
    if (monitors) for (const fn of monitors.values()) fn('noconnection');
    const served = this.#served.get(node);
    this.#served.delete(node);
    if (served) for (const cancel of served.values()) cancel();
  }
}

/**
 * A call served for a peer: settling it sends the answer straight back (no promise, no
 * extra microtask on the hot path). Never times out here; the caller owns the deadline.
 */
class ServedCall extends CallSlot {
  readonly #callId: number;
  readonly #node: string;
  readonly #links: RemoteLinks;

  constructor(ref: ActorRefData, callId: number, node: string, links: RemoteLinks) {
    super(ref, Infinity);
    this.#callId = callId;
    this.#node = node;
    this.#links = links;
  }

  override reply(value: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettle?.();
    let buf: Uint8Array;
    try {
      buf = encode([Tag.REPLY, this.#callId, toWireValue(value, 'reply')]);
      checkSize(this.#links, this.#node, buf, `the reply of ${this.ref.id}@${this.ref.node}`);
    } catch (err) {
      buf = encode([Tag.REPLY_ERROR, this.#callId, toWire(notSent(err, `the reply of ${this.ref.id}@${this.ref.node}`))]);
    }
    this.#links.send(this.#node, buf);
  }

  override fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettle?.();
    this.#links.send(this.#node, encodeError(this.#callId, error, this.#links.maxFrameSize(this.#node)));
  }
}

/**
 * Throws SerializationError if `buf` is larger than the frames `node` accepts (told in the
 * handshake): sent anyway, the peer would close the link and fail every call on it.
 */
function checkSize(links: RemoteLinks, node: string, buf: Uint8Array, what: string): void {
  const size = buf.length - FRAME_HEADER_SIZE;
  const max = links.maxFrameSize(node);
  if (max !== undefined && size > max) {
    throw new SerializationError(`${what} is ${size} bytes encoded, more than the maximum frame size of ${max} bytes of node ${node}`);
  }
}

/**
 * The SerializationError of a message that was not sent, saying which (`what`): a size
 * error already does; a value refused by the codec gets `what` in front of its reason.
 */
function notSent(err: unknown, what: string): SerializationError {
  if (err instanceof SerializationError && err.message.startsWith(what)) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new SerializationError(`${what} cannot be sent: ${why}`, { cause: err });
}

/** Largest error message sent when the whole error cannot be (too large or not encodable). */
const SHORT_MESSAGE = 1024;

function encodeError(id: number, err: unknown, max = Infinity): Uint8Array {
  try {
    const buf = encode([Tag.REPLY_ERROR, id, toWireValue(toWire(err), 'error')]);
    if (buf.length - FRAME_HEADER_SIZE <= max) return buf;
  } catch {
    // Below: an error whose data cannot be encoded still reports its class and message.
  }
  // Too large for the caller, or not encodable: its class and the start of its message.
  const e = err instanceof Error ? err : new Error(String(err));
  return encode([Tag.REPLY_ERROR, id, { name: e.name, message: e.message.slice(0, SHORT_MESSAGE) }]);
}

const toWireReason = (reason: DownReason): WireDownReason => downReasonToWire(reason) as WireDownReason;

function fromWireReason(v: unknown): DownReason {
  const reason = downReasonFromWire(v);
  if (reason === undefined) throw new ProtocolError('bad_message', 'malformed down reason');
  return reason;
}

function wireError(v: unknown): WireError {
  if (v && typeof v === 'object' && typeof (v as WireError).message === 'string') return v as WireError;
  throw new ProtocolError('bad_message', 'malformed error');
}

function num(v: unknown): number {
  if (typeof v !== 'number') throw new ProtocolError('bad_message', 'expected a number');
  return v;
}

function str(v: unknown): string {
  if (typeof v !== 'string') throw new ProtocolError('bad_message', 'expected a string');
  return v;
}

