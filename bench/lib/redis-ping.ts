// The Redis floor: a raw `PING` / `+PONG` round trip over one TCP connection, with nothing
// of ours (and no Redis client library) on the path, recorded like the other floors
// (raw.ts): HDR histogram, nanoseconds. Runs in the process that measures.
import { connect } from 'node:net';
import { idleLoop, timedLoop, type PingPongResult } from './raw.js';

/** `{ host, port }` of a `redis://host:port` URL. */
export function redisAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || 6379) };
}

/**
 * Sends `PING`, waits for `+PONG`, again, for `durationMs` after a warm-up. With `gapMs`, waits
 * that long between two PINGs, both ends idle in between (see `idleLoop`).
 */
export async function redisPingPong(url: string, durationMs: number, warmupMs = 200, gapMs = 0): Promise<PingPongResult> {
  const sock = connect({ ...redisAddress(url), noDelay: true });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  try {
    let pending = '';
    let waiting: { resolve: () => void; reject: (e: Error) => void } | undefined;
    sock.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      while (pending.startsWith('+PONG\r\n')) {
        pending = pending.slice(7);
        const w = waiting;
        waiting = undefined;
        w?.resolve();
      }
      if (pending.startsWith('-')) waiting?.reject(new Error(`Redis answered PING with ${JSON.stringify(pending.trim())}`));
    });
    sock.on('close', () => waiting?.reject(new Error('the connection to Redis closed during the PING loop')));
    const line = Buffer.from('PING\r\n');
    const once = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        waiting = { resolve, reject };
        sock.write(line);
      });
    if (gapMs > 0) return await idleLoop(once, durationMs, gapMs);
    return await timedLoop(once, durationMs, warmupMs);
  } finally {
    sock.destroy();
  }
}

/** `INFO stats` field `total_commands_processed` of the server: how many commands it ran so far. */
export async function redisCommandsProcessed(url: string): Promise<number> {
  const sock = connect({ ...redisAddress(url), noDelay: true });
  try {
    const text = await new Promise<string>((resolve, reject) => {
      let out = '';
      sock.once('error', reject);
      sock.on('data', (d: Buffer) => {
        out += d.toString('latin1');
        // A bulk string: `$<len>\r\n<body>\r\n`.
        const m = /^\$(\d+)\r\n/.exec(out);
        if (m && out.length >= m[0].length + Number(m[1]) + 2) resolve(out);
      });
      sock.write('INFO stats\r\n');
    });
    const m = /total_commands_processed:(\d+)/.exec(text);
    if (!m) throw new Error('INFO stats has no total_commands_processed');
    return Number(m[1]);
  } finally {
    sock.destroy();
  }
}
