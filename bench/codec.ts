// codec: encode+decode of representative mesh frames with msgpackr and with
// @msgpack/msgpack, side by side in the same run, to justify the codec choice. Also
// msgpackr with records (per frame and shared over a connection with `sequential`) and
// @msgpack/msgpack's Decoder with the strict limits used before a peer is authenticated.
// A figure is nanoseconds for one frame encoded and decoded, averaged over the frames.
//
// The mesh codec is measured as remote.ts uses it: the message walked by toWireValue, then
// encoded; and without the walk (as the mesh's own frames are sent), so the walk's cost on
// small frames shows. A reply whose value holds a Map, a Set, a Date, a BigInt beyond 64 bits
// and a typed array is measured through the mesh codec and through msgpackr's
// `structuredClone` option (records, which keep a Map apart from an object, and references),
// the alternative for carrying such values faithfully.
import { inspect, isDeepStrictEqual } from 'node:util';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { Packr, Unpackr } from 'msgpackr';
import { ActorRef } from '../src/actors/ref.js';
import { decode as meshDecode, encode as meshEncode, payloadOf, toWireValue } from '../src/mesh/codec.js';
import { fmt, ratio } from './lib/format.js';
import { interleaveSync } from './lib/loop.js';
import { panel } from './lib/chart.js';
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

/** A token reply whose value uses the types a plain msgpack map cannot keep apart. */
export function structuredFrames(seq: number): unknown[] {
  return [
    [
      21,
      seq,
      {
        token: 'ghs_16C7e42F292c6912E7710c838347Ae178B4a',
        expiresAt: new Date(1_764_153_600_000),
        scopes: new Set(['repo', 'read:org']),
        limits: new Map([
          ['core', 5000],
          ['search', 30],
        ]),
        nonce: new Uint8Array(16).fill(seq & 0xff),
        serial: 2n ** 70n + BigInt(seq),
      },
    ],
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
  meshCodecNs: 'mesh codec (src/mesh/codec.ts: msgpackr, refs as extension, value walked)',
  meshUncheckedNs: 'mesh codec without the walk (how the mesh sends its own frames)',
  msgpackrNs: 'msgpackr (plain maps)',
  msgpackNs: '@msgpack/msgpack Encoder/Decoder',
  msgpackrRecordsNs: 'msgpackr useRecords (per frame)',
  msgpackrSequentialNs: 'msgpackr records shared over a stream (sequential)',
  msgpackStrictNs: '@msgpack/msgpack strict Decoder (pre-auth limits)',
};

const STRUCTURED_LABELS: Record<string, string> = {
  meshStructuredNs: 'mesh codec (Map, -0 as extensions; value walked)',
  msgpackrStructuredCloneNs: 'msgpackr structuredClone (records, references)',
};

/** The mesh's own codec, measured through its public functions (see the head of this file). */
function meshCodecs(): Codec[] {
  const frames = (seq: number) => sampleFrames(seq, (node, id) => new ActorRef(node, id));
  const decode = (b: Uint8Array) => meshDecode(payloadOf(b), undefined);
  return [
    { name: 'meshCodecNs', label: LABELS.meshCodecNs!, encode: (v) => meshEncode(walked(v)), decode, frames },
    { name: 'meshUncheckedNs', label: LABELS.meshUncheckedNs!, encode: (v) => meshEncode(v), decode, frames },
  ];
}

/** The frame with its last element (the message, reply value) walked, as remote.ts does. */
function walked(frame: unknown): unknown {
  const f = frame as unknown[];
  const last = f.length - 1;
  const v = toWireValue(f[last], 'message');
  if (v === f[last]) return f;
  const copy = f.slice();
  copy[last] = v;
  return copy;
}

function structuredCodecs(): Codec[] {
  const clone = new Packr({ structuredClone: true });
  return [
    {
      name: 'meshStructuredNs',
      label: STRUCTURED_LABELS.meshStructuredNs!,
      encode: (v) => meshEncode(walked(v)),
      decode: (b) => meshDecode(payloadOf(b), undefined),
      frames: structuredFrames,
    },
    { name: 'msgpackrStructuredCloneNs', label: STRUCTURED_LABELS.msgpackrStructuredCloneNs!, encode: (v) => clone.pack(v), decode: (b) => clone.unpack(b), frames: structuredFrames },
  ];
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
  return [...meshCodecs(), ...list, ...structuredCodecs()];
}

/** Equal as data: same JSON (an ActorRef's own fields are exactly node and id). Structured frames: deep-equal. */
const sameData = (a: unknown, b: unknown, structured: boolean): boolean =>
  isDeepStrictEqual(a, b) || (!structured && JSON.stringify(a) === JSON.stringify(b));

const codec: BenchModule = {
  name: 'codec',
  summary: 'msgpackr vs @msgpack/msgpack encode+decode of mesh frames (call, token reply, cast with a ref); structured values vs msgpackr structuredClone',
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
      const structured = c.name in STRUCTURED_LABELS;
      let bytes = 0;
      let count = 0;
      for (let pass = 0; pass < 2; pass++) {
        bytes = 0;
        count = 0;
        for (const f of framesOf(pass)) {
          const b = c.encode(f);
          bytes += b.length;
          count++;
          const back = c.decode(b);
          if (!sameData(back, f, structured)) throw new Error(`${c.label} does not round-trip ${inspect(f)}: ${inspect(back)}`);
        }
      }
      metrics[c.name.replace(/Ns$/, 'Bytes')] = bytes / count;
    }
    const counts: Record<string, number> = {};
    const perOp = await interleaveSync(
      all.map((c) => {
        const frames = (c.frames ?? ((seq: number) => sampleFrames(seq)))(7);
        counts[c.name] = frames.length;
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
    for (const c of all) out[c.name] = perOp[c.name]! / counts[c.name]!;
    return { metrics: { ...out, ...metrics } };
  },
  charts: (r) => [
    {
      title: 'codec: encode+decode of one frame',
      panels: [
        panel('encode+decode', 'ns', [
          ['msgpackr (ours)', r.metrics.msgpackrNs, 'ours'],
          ['@msgpack/msgpack (peer)', r.metrics.msgpackNs, 'peer'],
        ]),
      ],
    },
  ],
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    return [
      {
        headers: ['codec', 'ns/frame (enc+dec)', 'bytes/frame', 'vs @msgpack/msgpack'],
        rows: Object.keys(LABELS)
          .filter((k) => m[k] !== undefined)
          .map((k) => [LABELS[k]!, fmt(m[k]), fmt(m[k.replace(/Ns$/, 'Bytes')]), ratio(m[k], m.msgpackNs)]),
      },
      {
        headers: ['a reply holding Map, Set, Date, big BigInt, Uint8Array', 'ns/frame (enc+dec)', 'bytes/frame', 'vs structuredClone'],
        rows: Object.keys(STRUCTURED_LABELS)
          .filter((k) => m[k] !== undefined)
          .map((k) => [STRUCTURED_LABELS[k]!, fmt(m[k]), fmt(m[k.replace(/Ns$/, 'Bytes')]), ratio(m[k], m.msgpackrStructuredCloneNs)]),
      },
    ];
  },
};

export default codec;
