// A raw authenticated mesh peer for tests: the project's Handshake over a TcpTransport,
// after which the test reads decoded messages and writes whatever frames it likes
// (including ones a real node would never send).
import net from 'node:net';
import { decode } from '../../src/mesh/codec.js';
import { Handshake } from '../../src/mesh/handshake.js';
import { TcpTransport } from '../../src/mesh/tcp-transport.js';
import type { Transport } from '../../src/mesh/transport.js';
import type { Node } from '../../src/node.js';

/** Dials `node` as `name`, resolves once the node reports it up. */
export async function rawPeer(
  node: Node,
  name: string,
  cookie: string,
  onMsg: (t: Transport, m: unknown[]) => void,
  maxFrameSize = 16 << 20,
): Promise<Transport> {
  const address = node.address!;
  const i = address.lastIndexOf(':');
  const sock = net.connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
  await new Promise((r) => sock.once('connect', r));
  const t = new TcpTransport(sock, maxFrameSize);
  const up = node.onNodeUp(name);
  await new Promise<void>((resolve, reject) => {
    new Handshake(
      t,
      'dial',
      { self: name, incarnation: `raw-${name}`, cookie, timeout: 5000, maxFrameSize },
      () => undefined,
      () => {
        t.maxFrameSize = maxFrameSize;
        t.onFrame = (p) => onMsg(t, decode(p, undefined) as unknown[]);
        resolve();
      },
      (_hs, f) => reject(new Error(f.reason)),
    );
  });
  await up;
  return t;
}
