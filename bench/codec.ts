// codec: encode+decode of representative mesh frames with msgpackr and with
// @msgpack/msgpack, side by side in the same run, to justify the codec choice. Also
// msgpackr with records (per frame and shared over a connection with `sequential`) and
// @msgpack/msgpack's Decoder with the strict limits used before a peer is authenticated.
// A figure is nanoseconds for one frame encoded and decoded, averaged over the frames.
import { isDeepStrictEqual } from 'node:util';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { Packr, Unpackr } from 'msgpackr';
import { ActorRef } from '../src/actors/ref.js';
import { decode as meshDecode, encode as meshEncode, payloadOf } from '../src/mesh/codec.js';
import { fmt, ratio } from './lib/format.js';
import { interleaveSync } from './lib/loop.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';

/**
 * Representative frames in the mesh's wire shape (src/mesh/protocol.ts: a msgpack array
 * whose first element is the tag): a CALL with a small message, a REPLY with a token-sized
 * value, and a CAST whose message holds an ActorRef. `ref` builds the ref (plain data for
 * the generic codecs, an ActorRef for the mesh codec, which sends it as an extension).
 */
export function sampleFrames(seq: number, ref: (node: string, id: string) => unknown = (node, id) => ({ node, id })): unknown[] {
  return [
    [20, seq, '5f3a9c1e.17', { add: 2 }],
    [21, seq, { ok: true, value: 'ghs_16C7e42F292c6912E7710c838347Ae178B4a', expiresAt: 1_764_153_600_000, version: 42 }],
    [23, 'pg', { join: 'MyApp.Expirables/githubAccessToken', refs: [ref('billing-2', '9f8e7d6c.3')] }],
  ];
}

interface Codec {
  name: string;
  label: string;
  encode(v: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
  /** The frames it carries (default: `sampleFrames`). */
  frames?: (seq: number) => unknown[];
}

const LABELS: Record<string, string> = {
  meshCodecNs: 'mesh codec (src/mesh/codec.ts: msgpackr, refs as extension)',
  msgpackrNs: 'msgpackr (plain maps)',
  msgpackNs: '@msgpack/msgpack Encoder/Decoder',
  msgpackrRecordsNs: 'msgpackr useRecords (per frame)',
  msgpackrSequentialNs: 'msgpackr records shared over a stream (sequential)',
  msgpackStrictNs: '@msgpack/msgpack strict Decoder (pre-auth limits)',
};

/** The mesh's own codec, measured through its public functions. */
function meshCodec(): Codec {
  return {
    name: 'meshCodecNs',
    label: LABELS.meshCodecNs!,
    encode: (v) => meshEncode(v),
    decode: (b) => meshDecode(payloadOf(b), undefined),
    frames: (seq) => sampleFrames(seq, (node, id) => new ActorRef(node, id)),
  };
}

function codecs(): Codec[] {
  const plain = new Packr({ useRecords: false });
  const records = new Packr({ useRecords: true });
  const seqOut = new Packr({ sequential: true } as ConstructorParameters<typeof Packr>[0]);
  const seqIn = new Unpackr({ sequential: true } as ConstructorParameters<typeof Unpackr>[0]);
  const enc = new Encoder();
  const dec = new Decoder();
  const strict = new Decoder({ maxStrLength: 64 * 1024, maxBinLength: 1 << 20, maxArrayLength: 4096, maxMapLength: 4096, maxExtLength: 1 << 20 });
  const list: Codec[] = [
    { name: 'msgpackrNs', label: LABELS.msgpackrNs!, encode: (v) => plain.pack(v), decode: (b) => plain.unpack(b) },
    { name: 'msgpackNs', label: LABELS.msgpackNs!, encode: (v) => enc.encode(v), decode: (b) => dec.decode(b) },
    { name: 'msgpackrRecordsNs', label: LABELS.msgpackrRecordsNs!, encode: (v) => records.pack(v), decode: (b) => records.unpack(b) },
    { name: 'msgpackrSequentialNs', label: LABELS.msgpackrSequentialNs!, encode: (v) => seqOut.pack(v), decode: (b) => seqIn.unpack(b) },
    { name: 'msgpackStrictNs', label: LABELS.msgpackStrictNs!, encode: (v) => enc.encode(v), decode: (b) => strict.decode(b) },
  ];
  return [meshCodec(), ...list];
}

/** Equal as data: same JSON (an ActorRef's own fields are exactly node and id). */
const sameData = (a: unknown, b: unknown): boolean => isDeepStrictEqual(a, b) || JSON.stringify(a) === JSON.stringify(b);

const codec: BenchModule = {
  name: 'codec',
  summary: 'msgpackr vs @msgpack/msgpack encode+decode of mesh frames (call, token reply, cast with a ref)',
  defaultDurationS: 3,
  latency: false,
  options: {},
  params: () => ({}),
  async run(_params, ctx) {
    const all = codecs();
    const metrics: Record<string, number> = {};
    // Every codec must round-trip every frame before anything is timed. Sizes are taken on
    // the second pass: the steady state of a connection (a sequential encoder sends each
    // record definition once, in the first frame of its shape). Mesh-codec sizes include
    // its 4-byte length prefix.
    for (const c of all) {
      const framesOf = c.frames ?? ((seq: number) => sampleFrames(seq));
      let bytes = 0;
      for (let pass = 0; pass < 2; pass++) {
        bytes = 0;
        for (const f of framesOf(pass)) {
          const b = c.encode(f);
          bytes += b.length;
          const back = c.decode(b);
          if (!sameData(back, f)) throw new Error(`${c.label} does not round-trip ${JSON.stringify(f)}: ${JSON.stringify(back)}`);
        }
      }
      metrics[c.name.replace(/Ns$/, 'Bytes')] = bytes / 3;
    }
    const perOp = await interleaveSync(
      all.map((c) => {
        const frames = (c.frames ?? ((seq: number) => sampleFrames(seq)))(7);
        return {
          name: c.name,
          op: () => {
            let last: unknown;
            for (let i = 0; i < frames.length; i++) last = c.decode(c.encode(frames[i]));
            return last;
          },
        };
      }),
      { durationMs: ctx.common.durationS * 1000, batch: 200, onProgress: (f) => ctx.progress(f, 'measuring') },
    );
    const out: Record<string, number> = {};
    for (const c of all) out[c.name] = perOp[c.name]! / 3;
    return { metrics: { ...out, ...metrics } };
  },
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    return [
      {
        headers: ['codec', 'ns/frame (enc+dec)', 'bytes/frame', 'vs @msgpack/msgpack'],
        rows: Object.keys(LABELS)
          .filter((k) => m[k] !== undefined)
          .map((k) => [LABELS[k]!, fmt(m[k]), fmt(m[k.replace(/Ns$/, 'Bytes')]), ratio(m[k], m.msgpackNs)]),
      },
    ];
  },
};

export default codec;
