// A small real DNS server for discovery tests: UDP on 127.0.0.1, port 0, answers A, AAAA and
// SRV from a table the test changes while it runs, or fails on purpose.
//
//   await using dns = await startDnsServer();
//   dns.setA('es.test', ['127.0.0.2', '127.0.0.3']);
//   dns.setSrv('_es._tcp.es.test', [{ target: 'a.es.test', port: 4370 }]);
//   dns.mode = 'servfail';        // 'answer' (default) | 'servfail' | 'empty' | 'silent'
//   startNode({ discovery: { dns: 'es.test', port, servers: [dns.address] } });
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

export type DnsMode = 'answer' | 'servfail' | 'empty' | 'silent';

export class DnsServer implements AsyncDisposable {
  readonly #socket: Socket;
  readonly #a = new Map<string, string[]>();
  readonly #srv = new Map<string, { target: string; port: number }[]>();
  /** How queries are answered now. 'empty': NOERROR with no records; 'silent': no reply. */
  mode: DnsMode = 'answer';
  /** Queries received, by `type name` (e.g. 'A es.test'). */
  readonly queries: string[] = [];

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('message', (msg, rinfo) => this.#onQuery(msg, rinfo.port, rinfo.address));
  }

  /** `ip:port` to pass as `discovery.servers`. */
  get address(): string {
    const a = this.#socket.address();
    return `${a.address}:${a.port}`;
  }

  setA(name: string, ips: string[]): void {
    this.#a.set(name.toLowerCase(), ips);
  }

  setSrv(name: string, records: { target: string; port: number }[]): void {
    this.#srv.set(name.toLowerCase(), records);
  }

  #onQuery(msg: Buffer, port: number, address: string): void {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const q = query.questions?.[0];
    if (!q) return;
    this.queries.push(`${q.type} ${q.name}`);
    if (this.mode === 'silent') return;
    const name = q.name.toLowerCase();
    const answers: dnsPacket.Answer[] = [];
    if (this.mode === 'answer') {
      if (q.type === 'A') for (const ip of this.#a.get(name) ?? []) answers.push({ type: 'A', name: q.name, ttl: 1, data: ip });
      if (q.type === 'SRV') {
        for (const r of this.#srv.get(name) ?? []) {
          answers.push({ type: 'SRV', name: q.name, ttl: 1, data: { priority: 0, weight: 0, port: r.port, target: r.target } });
        }
      }
    }
    const reply = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (this.mode === 'servfail' ? 2 : 0),
      questions: query.questions,
      answers,
    });
    this.#socket.send(reply, port, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Starts a DNS server on 127.0.0.1, port 0. */
export async function startDnsServer(): Promise<DnsServer> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return new DnsServer(socket);
}
