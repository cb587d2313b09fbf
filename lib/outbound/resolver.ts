/**
 * Finds where a domain's mail goes with `node:dns`: its MX records (or the implicit MX), then each
 * exchanger's addresses. The DNS servers are a setting, so tests and split-horizon setups use
 * their own. Answers that found hosts are kept for a minute; failures are asked again.
 */
import { Resolver } from 'node:dns/promises';
import { domainToASCII } from 'node:url';
import { asciiDomain, dnsFailure, routeFromMx, type MxRecord, type NoRoute } from './mx.js';

/** One exchanger and the addresses to connect to, IPv4 first. */
export interface Exchanger {
  readonly name: string;
  readonly addresses: readonly string[];
}

/** Where a domain's mail goes, or why it cannot go. */
export type Destination = { readonly kind: 'hosts'; readonly exchangers: readonly Exchanger[] } | NoRoute;

/** How lookups are made. */
export interface ResolverOptions {
  /** DNS servers as `address` or `address:port` (IPv6 in brackets with a port); default: the system's. */
  readonly servers?: readonly string[] | undefined;
  /** Milliseconds per query before it is tried again. Default 5000. */
  readonly timeout?: number | undefined;
  /** Tries per query. Default 2. */
  readonly tries?: number | undefined;
  /** How long a found destination is reused, in ms. Default 60 000; 0 turns the memory off. */
  readonly cacheMs?: number | undefined;
  /** This host's name: an exchanger by that name is this host (RFC 5321 §5.1), never a route. */
  readonly self?: string | undefined;
}

const CACHE_MAX = 10_000;

export class MxResolver {
  readonly #resolver: Resolver;
  readonly #cacheMs: number;
  readonly #self: string | undefined;
  readonly #cache = new Map<string, { destination: Destination; until: number }>();

  constructor(options: ResolverOptions = {}) {
    this.#resolver = new Resolver({ timeout: options.timeout ?? 5000, tries: options.tries ?? 2 });
    if (options.servers !== undefined && options.servers.length > 0) this.#resolver.setServers([...options.servers]);
    this.#cacheMs = options.cacheMs ?? 60_000;
    this.#self = options.self;
  }

  /** Where mail for `domain` (Unicode or A-label) goes. */
  async destination(domain: string): Promise<Destination> {
    const ascii = asciiDomain(domain, domainToASCII);
    if (ascii === undefined) return { kind: 'fail', permanent: true, status: '5.1.2', text: `${domain} is not a valid domain` };
    const cached = this.#cache.get(ascii);
    if (cached !== undefined && cached.until > Date.now()) return cached.destination;
    const destination = await this.#lookup(ascii);
    if (destination.kind === 'hosts' && this.#cacheMs > 0) {
      if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
      this.#cache.set(ascii, { destination, until: Date.now() + this.#cacheMs });
    }
    return destination;
  }

  async #lookup(domain: string): Promise<Destination> {
    let records: MxRecord[] | 'none';
    try {
      records = await this.#resolver.resolveMx(domain);
    } catch (err) {
      const failure = dnsFailure(domain, (err as { code?: string }).code);
      if (failure !== 'nodata') return failure;
      records = 'none';
    }
    const route = routeFromMx(domain, records, this.#self);
    if (route.kind === 'fail') return route;
    let temporary: string | undefined;
    const exchangers: Exchanger[] = [];
    for (const name of route.hosts) {
      const found = await this.#addresses(name);
      if (typeof found === 'string') temporary ??= found;
      else if (found.length > 0) exchangers.push({ name, addresses: found });
    }
    if (exchangers.length > 0) return { kind: 'hosts', exchangers };
    if (temporary !== undefined) return { kind: 'fail', permanent: false, status: '4.4.3', text: temporary };
    // RFC 5321 §5.1: no MX and no address is no mail domain; MX hosts without addresses may be fixed.
    return route.implicit
      ? { kind: 'fail', permanent: true, status: '5.1.2', text: `${domain} has no mail exchanger and no address` }
      : { kind: 'fail', permanent: false, status: '4.4.4', text: `no mail exchanger of ${domain} has an address` };
  }

  /** The host's IPv4 then IPv6 addresses; a string says a lookup failed for a reason that may pass. */
  async #addresses(host: string): Promise<string[] | string> {
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(host), this.#resolver.resolve6(host)]);
    const addresses: string[] = [];
    let failure: string | undefined;
    for (const result of [v4, v6]) {
      if (result.status === 'fulfilled') addresses.push(...result.value);
      else {
        const code = (result.reason as { code?: string }).code;
        if (code !== 'ENODATA' && code !== 'ENOTFOUND') failure = `${host}: address lookup failed (${code ?? 'unknown error'}), will retry`;
      }
    }
    return addresses.length === 0 && failure !== undefined ? failure : addresses;
  }
}
