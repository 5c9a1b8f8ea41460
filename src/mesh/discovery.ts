// DNS discovery: polls a DNS name and hands every address it finds to the mesh to dial, as
// seeds that come and go (a headless Kubernetes Service, a Consul or Route 53 name, SRV
// records of a service).
//
// - A/AAAA (the default): `resolve4` and `resolve6` of `dns`, each address with `port`.
//   SRV (`type: 'srv'`): `resolveSrv` of `dns`, then the A/AAAA addresses of every target,
//   each with the port of its record.
// - Each query has its own timeout (the Resolver's `timeout` and `tries`), so a silent
//   server costs one bounded wait per poll, never a hang.
// - The poller only adds: an address that drops out of DNS never disconnects a live peer
//   (failure detection decides that), and the mesh skips its own address.
// - A failed round (SERVFAIL, no answer, timeout, a name that does not exist) is reported
//   to `onError` and retried with backoff: FAILURE_BACKOFF_MIN_MS doubling up to
//   max(interval, FAILURE_BACKOFF_MAX_MS), so a broken server yields at most a few reports
//   per second and then fewer, never one per poll in a tight loop. The first answer again
//   resets the period to `interval`.
// - Nothing here can stop the node: every error is caught and reported.
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { DiscoveryError } from '../errors.js';
import { formatAddress } from './transport.js';

/** DNS discovery options (`startNode({ discovery })`). */
export interface DiscoveryOptions {
  /** The DNS name to poll: A/AAAA records, or SRV records with `type: 'srv'`. */
  dns: string;
  /** Port to dial at each A/AAAA address (1-65535); required unless `type` is 'srv'. */
  port?: number;
  /** 'srv' to read SRV records (each carries its port). @default A/AAAA records */
  type?: 'srv';
  /** Milliseconds between polls; at least 100. @default 5000 */
  interval?: number;
  /** DNS servers to ask (`'ip'` or `'ip:port'`), instead of the system's. */
  servers?: string[];
}

export const DEFAULT_DISCOVERY_INTERVAL = 5_000;
export const MIN_DISCOVERY_INTERVAL = 100;
/** Timeout of one DNS query attempt, in ms (the Resolver's `timeout`). */
export const DNS_QUERY_TIMEOUT = 1_000;
/** Attempts per DNS query (the Resolver's `tries`): one query waits at most 2 s. */
export const DNS_QUERY_TRIES = 2;
/** First delay after a failed round; doubles per failure in a row. */
export const FAILURE_BACKOFF_MIN_MS = 250;
/** Longest delay between failed rounds (or `interval`, if longer). */
export const FAILURE_BACKOFF_MAX_MS = 30_000;

export interface DiscoveryHooks {
  /** Dials the addresses found; resolves once each first attempt has ended. */
  found(addresses: string[]): Promise<void>;
  /** A round failed (DNS error or timeout). */
  failed(err: DiscoveryError): void;
}

export class DnsDiscovery {
  readonly #opts: Required<Omit<DiscoveryOptions, 'port' | 'type' | 'servers'>> & Pick<DiscoveryOptions, 'port' | 'type'>;
  readonly #resolver: dns.Resolver;
  readonly #hooks: DiscoveryHooks;
  #timer: NodeJS.Timeout | undefined = undefined;
  /** Failed rounds in a row (sets the backoff). */
  #failures = 0;
  #closed = false;
  /** Rounds run since start (diagnostics). */
  rounds = 0;

  constructor(options: DiscoveryOptions, hooks: DiscoveryHooks) {
    this.#opts = { dns: options.dns, port: options.port, type: options.type, interval: options.interval ?? DEFAULT_DISCOVERY_INTERVAL };
    this.#resolver = new dns.Resolver({ timeout: DNS_QUERY_TIMEOUT, tries: DNS_QUERY_TRIES });
    if (options.servers && options.servers.length > 0) this.#resolver.setServers(options.servers);
    this.#hooks = hooks;
  }

  /** Runs the first round (resolves once its dials have ended), then polls in the background. */
  async start(): Promise<void> {
    await this.#round();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#resolver.cancel();
  }

  // One poll: resolve, hand the addresses over, schedule the next.
  async #round(): Promise<void> {
    this.rounds++;
    let dialing: Promise<void> | undefined;
    try {
      const addresses = await this.#resolve();
      if (this.#closed) return;
      this.#failures = 0;
      dialing = this.#hooks.found(addresses);
    } catch (err) {
      if (this.#closed) return;
      this.#failures++;
      const e = err instanceof DiscoveryError ? err : new DiscoveryError(this.#opts.dns, (err as Error).message, { cause: err });
      this.#hooks.failed(e);
    }
    this.#schedule();
    await dialing;
  }

  #schedule(): void {
    if (this.#closed) return;
    const { interval } = this.#opts;
    const delay = this.#failures === 0
      ? interval
      : Math.min(FAILURE_BACKOFF_MIN_MS * 2 ** (this.#failures - 1), Math.max(interval, FAILURE_BACKOFF_MAX_MS));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#round();
    }, delay);
    this.#timer.unref();
  }

  async #resolve(): Promise<string[]> {
    const { dns: name, type, port } = this.#opts;
    if (type !== 'srv') return (await this.#addresses(name)).map((ip) => formatAddress(ip, port!));
    let records: { name: string; port: number }[];
    try {
      records = await this.#resolver.resolveSrv(name);
    } catch (err) {
      throw new DiscoveryError(name, `SRV query: ${(err as Error).message}`, { cause: err });
    }
    if (records.length === 0) throw new DiscoveryError(name, 'no SRV records');
    const out = new Set<string>();
    // A target that does not resolve is skipped; the others still count.
    const per = await Promise.allSettled(records.map(async (r) => ({ r, ips: await this.#addresses(r.name) })));
    let firstError: unknown;
    for (const p of per) {
      if (p.status === 'rejected') firstError ??= p.reason;
      else for (const ip of p.value.ips) out.add(formatAddress(ip, p.value.r.port));
    }
    if (out.size === 0) throw firstError instanceof Error ? firstError : new DiscoveryError(name, 'no SRV target resolves');
    return [...out];
  }

  /** A and AAAA records of `host` (an IP literal is its own answer); fails only when both fail. */
  async #addresses(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(host), this.#resolver.resolve6(host)]);
    const ips = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (ips.length > 0) return ips;
    const err = v4.status === 'rejected' ? (v4.reason as Error) : v6.status === 'rejected' ? (v6.reason as Error) : undefined;
    throw new DiscoveryError(host, err ? err.message : 'no A or AAAA records', { cause: err });
  }
}
