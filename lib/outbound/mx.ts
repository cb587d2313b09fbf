/**
 * What RFC 5321 §5.1 and RFC 7505 decide about a domain's mail exchangers, given the DNS's
 * answers: the order to try them in, and what a DNS failure means for the message. Pure: records
 * and error codes in, decisions out; the lookups themselves are in `resolver.ts`.
 */

/** One MX record as `node:dns` returns it. */
export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/** Why mail for a domain goes nowhere, now (`permanent: false`) or ever. */
export interface NoRoute {
  readonly kind: 'fail';
  readonly permanent: boolean;
  readonly status: string;
  readonly text: string;
}

/** Where a domain's mail goes, or why it goes nowhere. */
export type Route = { readonly kind: 'hosts'; readonly hosts: readonly string[]; readonly implicit: boolean } | NoRoute;

/**
 * The exchangers in the order to try them: lowest preference first, equal preferences shuffled
 * (RFC 5321 §5.1, so that load spreads), each name once. `random` returns numbers in [0, 1).
 */
export function orderExchanges(records: readonly MxRecord[], random: () => number = Math.random): string[] {
  const keyed = records.map((r) => ({ host: normaliseHost(r.exchange), priority: r.priority, key: random() }));
  keyed.sort((a, b) => a.priority - b.priority || a.key - b.key);
  const seen = new Set<string>();
  const hosts: string[] = [];
  for (const { host } of keyed) {
    if (host === '' || seen.has(host)) continue;
    seen.add(host);
    hosts.push(host);
  }
  return hosts;
}

/** A null MX (RFC 7505 §3): one record, preference 0, exchange `.`, which `node:dns` gives as ''. */
export function isNullMx(records: readonly MxRecord[]): boolean {
  return records.length === 1 && records[0]?.priority === 0 && normaliseHost(records[0].exchange) === '';
}

/** A host name as compared and connected to: lower case, without the root's trailing dot. */
export function normaliseHost(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * The route for a domain from its MX lookup: the exchangers, a permanent failure for a null MX,
 * or (no MX record) the domain itself as its implicit exchanger.
 */
export function routeFromMx(domain: string, records: readonly MxRecord[] | 'none', self?: string): Route {
  const me = self === undefined ? undefined : normaliseHost(self);
  const loops: NoRoute = { kind: 'fail', permanent: true, status: '5.4.6', text: `mail for ${domain} loops back to myself` };
  if (records === 'none' || records.length === 0) {
    const host = normaliseHost(domain);
    return host === me ? loops : { kind: 'hosts', hosts: [host], implicit: true };
  }
  if (isNullMx(records))
    return { kind: 'fail', permanent: true, status: '5.1.10', text: `${domain} does not accept mail (null MX, RFC 7505)` };
  // RFC 5321 §5.1: a client that finds itself among the exchangers drops itself and every
  // exchanger as preferred or less; none left is a loop (the MX points back here).
  const mine = records.filter((r) => normaliseHost(r.exchange) === me);
  if (mine.length > 0) {
    const best = Math.min(...mine.map((r) => r.priority));
    records = records.filter((r) => r.priority < best);
    if (records.length === 0) return loops;
  }
  const hosts = orderExchanges(records);
  if (hosts.length === 0) return { kind: 'fail', permanent: true, status: '5.1.10', text: `${domain} lists no usable mail exchanger` };
  return { kind: 'hosts', hosts, implicit: false };
}

/**
 * What a failed DNS query (its `node:dns` error code) means: a name that does not exist is a
 * permanent 5.1.2; no record of the type asked is "no data" (the caller moves on, for MX to the
 * implicit MX); anything else (timeout, SERVFAIL, refused, no server reachable) is temporary.
 */
export function dnsFailure(domain: string, code: string | undefined): 'nodata' | NoRoute {
  if (code === 'ENODATA') return 'nodata';
  if (code === 'ENOTFOUND') return { kind: 'fail', permanent: true, status: '5.1.2', text: `${domain}: no such domain` };
  return { kind: 'fail', permanent: false, status: '4.4.3', text: `${domain}: DNS lookup failed (${code ?? 'unknown error'}), will retry` };
}

/**
 * A recipient domain in the form DNS knows: its A-label (punycode) form for an internationalised
 * name (RFC 5890), lower case; `undefined` when it is no valid domain at all.
 */
export function asciiDomain(domain: string, toAscii: (d: string) => string): string | undefined {
  const bare = domain.replace(/^\[|\]$/g, '');
  if (bare !== domain) return undefined; // an address literal has no MX; it is handled apart
  const ascii = toAscii(domain.normalize('NFC')).replace(/\.$/, '').toLowerCase();
  // RFC 1035 §2.3.4: labels of 1 to 63 octets, at most 253 in all.
  const labels = ascii.split('.');
  if (ascii === '' || ascii.length > 253 || labels.some((l) => l.length === 0 || l.length > 63)) return undefined;
  return ascii;
}
