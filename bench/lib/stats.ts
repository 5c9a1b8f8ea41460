// Statistics helpers: medians over runs, Jain's fairness index, HDR histograms.
// Latency distributions always go through hdr-histogram-js (never a hand-made histogram);
// histograms recorded in other processes travel as compressed base64 and are merged here.
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

/** A histogram of integer values (we record microseconds or nanoseconds), 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ numberOfSignificantValueDigits: 3, autoResize: true, lowestDiscernibleValue: 1 });
}

/** Serializes a histogram to send it to another process. */
export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Reads a histogram sent by `encodeHistogram`. */
export function decodeHistogram(s: string): Histogram {
  return hdr.decodeFromCompressedBase64(s);
}

/** Merges histograms (possibly from other processes) into a new one. */
export function mergeHistograms(parts: Iterable<Histogram | string>): Histogram {
  const out = newHistogram();
  for (const p of parts) out.add(typeof p === 'string' ? decodeHistogram(p) : p);
  return out;
}

/** The median of a list of numbers (mean of the middle two for an even count); NaN if empty. */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Per-key medians over runs; a key missing from some runs takes the median of the others. */
export function medians(runs: readonly Record<string, number>[]): Record<string, number> {
  const keys = new Set<string>();
  for (const r of runs) for (const k of Object.keys(r)) keys.add(k);
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = median(runs.map((r) => r[k]).filter((x): x is number => typeof x === 'number'));
  return out;
}

/** Jain's fairness index: (Σx)² / (n·Σx²); 1 when every share is equal, 1/n when one takes all. */
export function jain(shares: readonly number[]): number {
  if (shares.length === 0) return NaN;
  let sum = 0;
  let sq = 0;
  for (const x of shares) {
    sum += x;
    sq += x * x;
  }
  return sq === 0 ? 1 : (sum * sum) / (shares.length * sq);
}
