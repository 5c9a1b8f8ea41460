// The TLS transport: the same frames as plain TCP (a TLSSocket is a net.Socket, so the
// framing, corking and close handling of ./tcp-transport.ts apply unchanged), over node:tls
// with mutual authentication.
//
// Invariants:
// - Both sides present a certificate and both verify the other's chain against `ca`
//   (`requestCert` + `rejectUnauthorized` on the listener, `rejectUnauthorized` on the
//   dialler). Only links that pass reach the mesh; the cookie handshake then runs inside.
// - The host name in the certificate is not checked: the cluster's CA is its own, every
//   certificate it signed is a member, and peers are dialled at gossiped IP addresses that
//   certificates rarely list. Node names are proven by the cookie handshake.
// - A TLS handshake must finish within `handshakeTimeout` ms.
//
// Failure handling: a client that does not speak TLS, or whose certificate is missing or
// not signed by `ca`, is cut by the listener before any frame is read (`onRefused`
// reports it, 'tls'); the listener keeps serving. A dial whose peer presents a bad
// certificate rejects (reported too). A dialler refused by the listener sees, with TLS 1.3
// (the client's certificate is verified last), only its link closing during the handshake.
import net from 'node:net';
import tls from 'node:tls';
import { debuglog } from 'node:util';
import { InvalidOptionError } from '../errors.js';
import { listenOn, TcpTransport } from './tcp-transport.js';
import { formatAddress, parseAddress, type Listener, type Transport, type TransportFactory } from './transport.js';

const log = debuglog('expirable-store:mesh');

/** PEM material of one node: its key and certificate, and the cluster's CA certificate(s). */
export interface TlsMaterial {
  key: string | Buffer;
  cert: string | Buffer;
  ca: string | Buffer | (string | Buffer)[];
}

/** A link refused at the TLS layer, by this node ('local') or by the peer ('remote'). */
export interface TlsRefusal {
  address: string;
  message: string;
  by: 'local' | 'remote';
}

export interface TlsTransportOptions extends TlsMaterial {
  maxFrameSize: number;
  /** Milliseconds a TLS handshake may take. */
  handshakeTimeout: number;
  /** Called for every link refused at the TLS layer. */
  onRefused?: (info: TlsRefusal) => void;
}

/** Checks the PEM material and builds the secure context once; InvalidOptionError if it is unusable. */
export function tlsContext(material: TlsMaterial): tls.SecureContext {
  if (material === null || typeof material !== 'object') throw new InvalidOptionError('tls', 'an object { key, cert, ca } of PEM strings or Buffers', material);
  const pem = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
  for (const k of ['key', 'cert'] as const) {
    if (!pem(material[k])) throw new InvalidOptionError(`tls.${k}`, 'a PEM string or Buffer', material[k]);
  }
  const ca = material.ca;
  if (!(pem(ca) || (Array.isArray(ca) && ca.length > 0 && ca.every(pem)))) {
    throw new InvalidOptionError('tls.ca', 'a PEM string or Buffer, or a non-empty array of them', ca);
  }
  try {
    return tls.createSecureContext({ key: material.key, cert: material.cert, ca });
  } catch (err) {
    const e = new InvalidOptionError('tls', 'a usable PEM key, certificate and CA', (err as Error).message);
    (e as { cause?: unknown }).cause = err;
    throw e;
  }
}

/** True for errors raised by the TLS layer (alerts, verification failures). */
function isTlsError(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /CERT|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO/.test(code);
}

/** Mutually authenticated TLS: listen on host:port, dial host:port. */
export function tlsTransportFactory(options: TlsTransportOptions): TransportFactory {
  // Checked once here (a bad PEM fails at start); each link builds its context from the PEM.
  tlsContext(options);
  const pem = { key: options.key, cert: options.cert, ca: options.ca };
  const refused = (info: TlsRefusal): void => {
    log('TLS link %s refused (%s): %s', info.address, info.by, info.message);
    options.onRefused?.(info);
  };
  return {
    listen(host, port, onTransport) {
      return new Promise<Listener>((resolve, reject) => {
        const server = tls.createServer(
          { ...pem, requestCert: true, rejectUnauthorized: true, handshakeTimeout: options.handshakeTimeout },
          (socket) => onTransport(new TcpTransport(socket, options.maxFrameSize)),
        );
        // Read the peer's address on arrival: node caches it, so it is still known when a
        // refused socket (already destroyed) is reported.
        server.on('connection', (raw: net.Socket) => void raw.remoteAddress);
        server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
          const raw = (socket as unknown as { _parent?: net.Socket })._parent ?? socket;
          const address = formatAddress(raw.remoteAddress ?? '?', raw.remotePort ?? 0);
          // A certificate that fails verification is cut without an alert; say why here.
          const why = (socket as { authorizationError?: unknown }).authorizationError;
          refused({ address, message: why ? `client certificate rejected: ${String(why)}` : err.message, by: 'local' });
          socket.destroy();
        });
        listenOn(server, host, port).then(resolve, reject);
      });
    },
    dial(address, timeout) {
      const { host, port } = parseAddress(address);
      return new Promise<Transport>((resolve, reject) => {
        const socket = tls.connect({
          host,
          port,
          ...pem,
          rejectUnauthorized: true,
          // The chain is verified against the cluster's CA; names are the cookie handshake's job.
          checkServerIdentity: () => undefined,
          ...(net.isIP(host) ? {} : { servername: host }),
        });
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error(`TLS connect to ${address} timed out after ${timeout} ms`));
        }, timeout);
        timer.unref();
        socket.once('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          if (isTlsError(err)) refused({ address, message: err.message, by: 'local' });
          reject(err);
        });
        socket.once('secureConnect', () => {
          clearTimeout(timer);
          socket.removeAllListeners('error');
          // TLS 1.3: the listener verifies our certificate after we consider the handshake
          // done; its refusal arrives as an alert on the open socket.
          socket.once('error', (err: NodeJS.ErrnoException) => {
            if (isTlsError(err)) refused({ address, message: err.message, by: 'remote' });
          });
          resolve(new TcpTransport(socket, options.maxFrameSize));
        });
      });
    },
  };
}
