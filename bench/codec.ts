// codec: encode+decode of representative mesh frames with msgpackr and with
// @msgpack/msgpack, side by side in the same run, to justify the codec choice. Also
// msgpackr with records (per frame and shared over a connection with `sequential`) and
// @msgpack/msgpack's Decoder with the strict limits used before a peer is authenticated.
// A figure is nanoseconds for one frame encoded and decoded, averaged over the frames.
import { isDeepStrictEqual } from 'node:util';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { Packr, Unpackr } from 'msgpackr';
import { fmt, ratio } from './lib/format.js';
import { interleaveSync } from './lib/loop.js';
import type { BenchModule, BenchResult, TableSection } from './lib/types.js';

/** Representative frames: a call with a small message, a reply with a token, a value holding a ref. */
export function sampleFrames(seq: number): unknown[] {
  return [
    { t: 'call', id: seq, to: { node: 'billing-1', id: '5f3a9c1e.17' }, from: 'billing-2', timeout: 5000, msg: { add: 2 } },
    {
      t: 'reply',
      id: seq,
      ok: true,
      value: { ok: true, value: 'ghs_16C7e42F292c6912E7710c838347Ae178B4a', expiresAt: 1_764_153_600_000, version: 42 },
    },
    {
      t: 'cast',
      to: { node: 'billing-3', id: 'pg' },
      msg: { join: 'MyApp.Expirables/githubAccessToken', refs: [{ node: 'billing-2', id: '9f8e7d6c.3' }] },
    },
  ];
}

interface Codec {
  name: string;
  label: string;
  encode(v: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
}

function codecs(): Codec[] {
  const plain = new Packr({ useRecords: false });
  const records = new Packr({ useRecords: true });
  const seqOut = new Packr({ sequential: true } as ConstructorParameters<typeof Packr>[0]);
  const seqIn = new Unpackr({ sequential: true } as ConstructorParameters<typeof Unpackr>[0]);
  const enc = new Encoder();
  const dec = new Decoder();
  const strict = new Decoder({ maxStrLength: 64 * 1024, maxBinLength: 1 << 20, maxArrayLength: 4096, maxMapLength: 4096, maxExtLength: 1 << 20 });
  return [
    { name: 'msgpackrNs', label: 'msgpackr (plain maps)', encode: (v) => plain.pack(v), decode: (b) => plain.unpack(b) },
    { name: 'msgpackNs', label: '@msgpack/msgpack Encoder/Decoder', encode: (v) => enc.encode(v), decode: (b) => dec.decode(b) },
    { name: 'msgpackrRecordsNs', label: 'msgpackr useRecords (per frame)', encode: (v) => records.pack(v), decode: (b) => records.unpack(b) },
    {
      name: 'msgpackrSequentialNs',
      label: 'msgpackr records shared over a stream (sequential)',
      encode: (v) => seqOut.pack(v),
      decode: (b) => seqIn.unpack(b),
    },
    { name: 'msgpackStrictNs', label: '@msgpack/msgpack strict Decoder (pre-auth)', encode: (v) => enc.encode(v), decode: (b) => strict.decode(b) },
  ];
}

const codec: BenchModule = {
  name: 'codec',
  summary: 'msgpackr vs @msgpack/msgpack encode+decode of mesh frames (call, token reply, value with a ref)',
  defaultDurationS: 3,
  latency: false,
  options: {},
  params: () => ({}),
  async run(_params, ctx) {
    const all = codecs();
    const metrics: Record<string, number> = {};
    // Check every codec round-trips every frame before timing anything.
    // Sizes are taken on the second pass: the steady state of a connection (a sequential
    // encoder sends each record definition once, in the first frame of its shape).
    for (const c of all) {
      let bytes = 0;
      for (let pass = 0; pass < 2; pass++) {
        bytes = 0;
        for (const f of sampleFrames(pass)) {
          const b = c.encode(f);
          bytes += b.length;
          const back = c.decode(b);
          if (!isDeepStrictEqual(back, f)) throw new Error(`${c.label} does not round-trip ${JSON.stringify(f)}: ${JSON.stringify(back)}`);
        }
      }
      metrics[c.name.replace(/Ns$/, 'Bytes')] = bytes / 3;
    }
    const frames = sampleFrames(7);
    const perOp = await interleaveSync(
      all.map((c) => ({
        name: c.name,
        op: () => {
          let last: unknown;
          for (let i = 0; i < frames.length; i++) last = c.decode(c.encode(frames[i]));
          return last;
        },
      })),
      { durationMs: ctx.common.durationS * 1000, batch: 200, onProgress: (f) => ctx.progress(f, 'measuring') },
    );
    for (const c of all) metrics[c.name] = perOp[c.name]! / frames.length;
    return { metrics: sortKeys(metrics, all) };
  },
  table(result: BenchResult): TableSection[] {
    const m = result.metrics;
    return [
      {
        headers: ['codec', 'ns/frame (enc+dec)', 'bytes/frame', 'vs @msgpack/msgpack'],
        rows: codecs().map((c) => [c.label, fmt(m[c.name]), fmt(m[c.name.replace(/Ns$/, 'Bytes')]), ratio(m[c.name], m.msgpackNs)]),
      },
    ];
  },
};

function sortKeys(metrics: Record<string, number>, order: Codec[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of order) out[c.name] = metrics[c.name]!;
  for (const [k, v] of Object.entries(metrics)) if (!(k in out)) out[k] = v;
  return out;
}

export default codec;
