// Failure detection of one authenticated link: silence and back-pressure.
//
// - Every frame received counts as a sign of life (the connection sets `received`), and so
//   do bytes of a frame still arriving (when the link reports `bytesReceived`); the
//   detector sends a HEARTBEAT only on ticks where nothing else was sent, so a busy link
//   carries no extra traffic and the hot path reads no clock.
// - Silence: no frame for longer than `failureTimeout` ms => the link fails
//   ('heartbeat_timeout'). A peer whose process is stopped, or whose event loop is blocked
//   that long, is down by this rule; that is the point.
// - Our own stall is not the peer's fault: if this process itself did not tick for a long
//   while (stopped, or its event loop blocked), the peer gets a fresh window instead of
//   being declared down for bytes we have not read yet.
// - Back-pressure: bytes waiting to be written above `highWaterMark` for longer than
//   `failureTimeout` => the link fails ('backpressure') rather than memory growing.
// Depends on a small link interface, so a fake link and a fake clock test it.

export interface HeartbeatLink {
  sendHeartbeat(): void;
  readonly bufferedAmount: number;
  /** Total bytes received, if known (progress inside a large frame). */
  readonly bytesReceived?: number | undefined;
  fail(reason: 'heartbeat_timeout' | 'backpressure'): void;
}

export interface HeartbeatOptions {
  /** ms between ticks (and heartbeats on an idle link). */
  heartbeatInterval: number;
  /** ms of silence (or of write back-pressure) after which the link fails. */
  failureTimeout: number;
  /** Bytes waiting to be written beyond which the link is under back-pressure. */
  highWaterMark: number;
}

/** Default write backlog tolerated before back-pressure counts: 64 MiB. */
export const DEFAULT_HIGH_WATER_MARK = 64 * 1024 * 1024;

export class HeartbeatMonitor {
  /** Set by the connection on every frame received; cleared by each tick. */
  received = false;
  /** Set by the connection on every frame sent. */
  sent = false;
  readonly #link: HeartbeatLink;
  readonly #opts: HeartbeatOptions;
  /** Last time (monotonic ms) a frame was known to have arrived. */
  #lastHeard: number;
  #lastTick: number;
  /** `bytesReceived` at the previous tick. */
  #lastBytes: number | undefined;
  /** Since when the write backlog is above the high-water mark, or undefined. */
  #pressuredSince: number | undefined = undefined;
  #failed = false;

  constructor(link: HeartbeatLink, opts: HeartbeatOptions, now: number) {
    this.#link = link;
    this.#opts = opts;
    this.#lastHeard = now;
    this.#lastTick = now;
    this.#lastBytes = link.bytesReceived;
  }

  /** Runs every `heartbeatInterval` ms (one timer for all links of a node). */
  tick(now: number): void {
    if (this.#failed) return;
    const { heartbeatInterval, failureTimeout, highWaterMark } = this.#opts;
    // We did not run for a long while: give the peer a new window before judging it.
    if (now - this.#lastTick > Math.max(3 * heartbeatInterval, failureTimeout / 2)) {
      this.#lastHeard = now;
      this.#pressuredSince = undefined;
    }
    this.#lastTick = now;
    const bytes = this.#link.bytesReceived;
    const progress = bytes !== this.#lastBytes;
    this.#lastBytes = bytes;
    if (this.received || progress) {
      this.received = false;
      this.#lastHeard = now;
    } else if (now - this.#lastHeard > failureTimeout) {
      this.#failed = true;
      this.#link.fail('heartbeat_timeout');
      return;
    }
    if (this.#link.bufferedAmount > highWaterMark) {
      this.#pressuredSince ??= now;
      if (now - this.#pressuredSince > failureTimeout) {
        this.#failed = true;
        this.#link.fail('backpressure');
        return;
      }
    } else {
      this.#pressuredSince = undefined;
    }
    if (!this.sent) this.#link.sendHeartbeat();
    this.sent = false;
  }
}
