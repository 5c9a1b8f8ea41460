// Length-prefixed framing: a pure, synchronous parser fed byte chunks, knowing nothing of
// sockets (so it is fuzzed without them).
//
// Wire format: each frame is a 4-byte unsigned big-endian length N, then N payload bytes.
//
// Invariants:
// - Linear cost: frames that lie inside one chunk are handed out as zero-copy views of that
//   chunk; a frame split over chunks is copied once into a buffer of its exact size,
//   allocated when its length prefix is complete. No chunk is ever re-concatenated.
// - The length is checked against `maxFrameSize` before any of its payload is buffered, so
//   a peer cannot make us allocate more than that (0xFFFFFFFF included).
// - A view handed to `onFrame` is valid only during that call (it may alias a chunk the
//   caller reuses): decode it synchronously or copy it.
//
// Failure handling: a bad length throws a ProtocolError('frame_too_large'); the decoder is
// then dead (every later push throws too) and the owner closes that connection only.
import { ProtocolError } from '../errors.js';

export const FRAME_HEADER_SIZE = 4;
/** Default largest payload accepted: 16 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;
/** Largest payload a length prefix can describe. */
export const MAX_FRAME_LIMIT = 0xffff_ffff;

export type FrameHandler = (frame: Uint8Array) => void;

export class FrameDecoder {
  /** Largest payload accepted; may be raised or lowered between frames (e.g. after authentication). */
  maxFrameSize: number;
  /** Bytes of a length prefix split over chunks (0..3 of them valid). */
  readonly #header = new Uint8Array(FRAME_HEADER_SIZE);
  #headerFill = 0;
  /** The frame being assembled over several chunks, or undefined between frames. */
  #partial: Uint8Array | undefined = undefined;
  #partialFill = 0;
  #error: ProtocolError | undefined = undefined;

  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes held for an incomplete frame (header or payload). */
  get buffered(): number {
    return this.#headerFill + this.#partialFill;
  }

  /**
   * Feeds one chunk; calls `onFrame` for every frame it completes, in order. Throws a
   * ProtocolError on a bad length (frames before it in the chunk have been delivered).
   * A throw from `onFrame` propagates and leaves the decoder positioned after that frame.
   */
  push(chunk: Uint8Array, onFrame: FrameHandler): void {
    if (this.#error) throw this.#error;
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      // Continue a frame started in an earlier chunk.
      if (this.#partial) {
        const need = this.#partial.length - this.#partialFill;
        const take = Math.min(need, end - pos);
        this.#partial.set(chunk.subarray(pos, pos + take), this.#partialFill);
        this.#partialFill += take;
        pos += take;
        if (this.#partialFill < this.#partial.length) return;
        const frame = this.#partial;
        this.#partial = undefined;
        this.#partialFill = 0;
        onFrame(frame);
        continue;
      }
      // Read a length prefix, possibly split over chunks.
      let len: number;
      if (this.#headerFill === 0 && end - pos >= FRAME_HEADER_SIZE) {
        len = ((chunk[pos]! << 24) >>> 0) + (chunk[pos + 1]! << 16) + (chunk[pos + 2]! << 8) + chunk[pos + 3]!;
        pos += FRAME_HEADER_SIZE;
      } else {
        while (this.#headerFill < FRAME_HEADER_SIZE && pos < end) this.#header[this.#headerFill++] = chunk[pos++]!;
        if (this.#headerFill < FRAME_HEADER_SIZE) return;
        const h = this.#header;
        len = ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
        this.#headerFill = 0;
      }
      if (len > this.maxFrameSize) {
        this.#error = new ProtocolError(
          'frame_too_large',
          `frame of ${len} bytes exceeds the maximum frame size of ${this.maxFrameSize} bytes`,
        );
        throw this.#error;
      }
      if (end - pos >= len) {
        // Whole frame inside this chunk: a view, no copy.
        const frame = chunk.subarray(pos, pos + len);
        pos += len;
        onFrame(frame);
      } else {
        this.#partial = new Uint8Array(len);
        this.#partialFill = 0;
      }
    }
  }
}

/** Writes `payloadLength` as the 4-byte prefix at `offset` of `target`. */
export function writeFrameHeader(target: Uint8Array, payloadLength: number, offset = 0): void {
  if (!(payloadLength >= 0 && payloadLength <= MAX_FRAME_LIMIT)) {
    throw new RangeError(`frame payload of ${payloadLength} bytes cannot be framed`);
  }
  target[offset] = payloadLength >>> 24;
  target[offset + 1] = (payloadLength >>> 16) & 0xff;
  target[offset + 2] = (payloadLength >>> 8) & 0xff;
  target[offset + 3] = payloadLength & 0xff;
}

/** A frame (prefix + payload) as one new buffer; for tests and the handshake. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  writeFrameHeader(out, payload.length);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}
