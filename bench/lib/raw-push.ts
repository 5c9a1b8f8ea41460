// The floors of the stampede and replication benchmarks: raw TCP links between the bench's
// processes, on which a value is one frame pushed to every other process, with nothing of
// ours on the path and the least any design can do. Handlers for a bench child (see
// ./child.ts), served by the store peer beside its own.
// - Stampede: the process that fetches is chosen beforehand (no lock, no ask: zero messages
//   before the fetch); it sleeps the fetch time, pushes, and answers its own callers; the
//   callers elsewhere are answered when the push arrives (one message after the fetch).
// - Replication: one process pushes every refresh period, the others idle in between (as
//   replicas are between two refreshes); the time from the push to its arrival at the last
//   of them.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { frameOf, frameSplitter } from './raw.js';
import { encodeHistogram, newHistogram } from './stats.js';

const now = process.hrtime.bigint;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves at the shared monotonic instant `at` (ns): sleeps until 2 ms before it, then spins,
 * so the processes of one stampede start together (what the stampede's callers do too).
 */
export async function untilInstant(at: bigint): Promise<void> {
  const wait = Number(at - now()) / 1e6;
  if (wait > 2) await sleep(wait - 2);
  while (now() < at);
}

/** The value the fetching process pushes, framed as the raw ping-pong's frames (./raw.ts): about the size of a small token push. */
const PUSH = frameOf(Buffer.alloc(124, 1));

let server: Server | undefined;
const accepted: Socket[] = [];
const outgoing: Socket[] = [];
/** Answers this process's callers of the stampede under way (set for each one). */
let answer: (() => void) | undefined;
/** hrtime (ns) of each push that arrived here while the replication floor runs (see rawPushLoop). */
let arrivals: bigint[] | undefined;

/** A push arrived: it answers the callers of the stampede under way here, or is timed. */
function onPush(): void {
  arrivals?.push(now());
  const a = answer;
  answer = undefined;
  a?.();
}

export const rawPushHandlers = {
  /** Listens on 127.0.0.1 (port 0) for the other processes' pushes; resolves with the port. */
  async rawListen(): Promise<{ port: number }> {
    server = createServer((s) => {
      s.setNoDelay(true);
      accepted.push(s);
      s.on('data', frameSplitter(onPush)); // a push split across reads counts once, when whole
      s.on('error', () => s.destroy());
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no port');
    return { port: a.port };
  },
  /** Connects to every other process's `rawListen` port (the links this process pushes on). */
  async rawConnect({ ports }: { ports: number[] }): Promise<null> {
    await Promise.all(
      ports.map(
        (port) =>
          new Promise<void>((resolve, reject) => {
            const s = connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve());
            s.once('error', reject);
            outgoing.push(s);
          }),
      ),
    );
    return null;
  },
  /**
   * One floor stampede: `callers` callers started at `startAt` (ns) wait for the value; here
   * the fetch runs (`fetcher`: a sleep of `fetchMs`, then the push to every other process) or
   * the push from the process that ran it answers them. Caller latencies in µs (HDR).
   */
  async rawStampede({ startAt, callers, fetchMs, fetcher }: { startAt: string; callers: number; fetchMs: number; fetcher: boolean }) {
    const gate = new Promise<void>((resolve) => (answer = resolve));
    await untilInstant(BigInt(startAt));
    const h = newHistogram();
    const waiting = Array.from({ length: callers }, async () => {
      const t0 = now();
      await gate;
      h.recordValue(Math.max(1, Math.round(Number(now() - t0) / 1000)));
    });
    if (fetcher) {
      await sleep(fetchMs);
      for (const s of outgoing) s.write(PUSH);
      onPush();
    }
    await Promise.all(waiting);
    return { histogram: encodeHistogram(h) };
  },
  /** Starts timing the pushes that arrive here (the replication floor's receivers). */
  rawTimeArrivals(): null {
    arrivals = [];
    return null;
  },
  /** The arrival times recorded since rawTimeArrivals (ns, as strings), and stops recording. */
  rawArrivals(): { at: string[] } {
    const at = (arrivals ?? []).map(String);
    arrivals = undefined;
    return { at };
  },
  /**
   * The replication floor's sender: one push to every other process each `gapMs` (both ends
   * idle in between), for `durationMs`. Returns when each was sent (hrtime ns, as strings).
   */
  async rawPushLoop({ gapMs, durationMs }: { gapMs: number; durationMs: number }): Promise<{ sent: string[] }> {
    const sent: string[] = [];
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      await sleep(gapMs);
      sent.push(String(now()));
      for (const s of outgoing) s.write(PUSH);
    }
    return { sent };
  },
  /** Closes the floor's links and server. */
  async rawClose(): Promise<null> {
    for (const s of [...accepted, ...outgoing]) s.destroy();
    accepted.length = 0;
    outgoing.length = 0;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    return null;
  },
};
