// Certificates for TLS tests, made at test time (never committed): a cluster CA and node
// certificates signed by it, with the `selfsigned` package (EC P-256 keys, SHA-256, fast).
//
//   const ca = await makeCa('cluster');                  // { key, cert }
//   const tls = await makeNodeTls(ca, 'node-1');          // { key, cert, ca } for startNode({ tls })
//   const rogue = await makeNodeTls(await makeCa('other'), 'intruder'); // valid, wrong CA
import { generate } from 'selfsigned';

export interface Pem {
  key: string;
  cert: string;
}

/** PEM material accepted by `startNode({ tls })`. */
export interface NodeTls {
  key: string;
  cert: string;
  ca: string;
}

const validity = (): { notBeforeDate: Date; notAfterDate: Date } => {
  const now = Date.now();
  // Start a little in the past: tolerate a clock that is a bit behind.
  return { notBeforeDate: new Date(now - 3_600_000), notAfterDate: new Date(now + 7 * 86_400_000) };
};

/** A self-signed certificate authority. */
export async function makeCa(name = 'expirable-store test CA'): Promise<Pem> {
  const r = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity(),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { key: r.private, cert: r.cert };
}

/** A node certificate signed by `ca`, usable as TLS server and client; with the CA, ready for startNode. */
export async function makeNodeTls(ca: Pem, name: string): Promise<NodeTls> {
  const r = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity(),
    ca: { key: ca.key, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { key: r.private, cert: r.cert, ca: ca.cert };
}
