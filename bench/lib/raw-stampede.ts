// The floor of a stampede: the same processes and callers as the stampede benchmark, with
// nothing of ours on the path and the least any design can do. The process that fetches is
// chosen beforehand (no lock, no ask: zero messages before the fetch), it sleeps the fetch
// time, writes one raw TCP frame to every other process, and answers its own callers; the
// callers there are answered when that frame arrives (one message after the fetch). Handlers
// for a bench child (see ./child.ts), served by the store peer beside its own.
import { createServer, connect, type Server, type Socket } from 'node:net';
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

/** The value frame the fetching process pushes: about the size of a small token push. */
const PUSH = Buffer.alloc(128, 1);

let server: Server | undefined;
const accepted: Socket[] = [];
const outgoing: Socket[] = [];
/** Answers this process's callers of the stampede under way (set for each one). */
let answer: (() => void) | undefined;

/** The push answers the callers of the stampede under way here. */
function onPush(): void {
  const a = answer;
  answer = undefined;
  a?.();
}

/** Reads whole pushes off a link (a push split across reads answers once, when complete). */
function pushReader(): (chunk: Buffer) => void {
  let bytes = 0;
  return (chunk) => {
    bytes += chunk.length;
    for (; bytes >= PUSH.length; bytes -= PUSH.length) onPush();
  };
}

export const rawStampedeHandlers = {
  /** Listens on 127.0.0.1 (port 0) for the other processes' pushes; resolves with the port. */
  async rawListen(): Promise<{ port: number }> {
    server = createServer((s) => {
      s.setNoDelay(true);
      accepted.push(s);
      s.on('data', pushReader());
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
