/**
 * Lists of trusted peers (a load balancer speaking the PROXY protocol, a filter using XCLIENT):
 * addresses and CIDRs, IPv4 and IPv6, matched with Node's `net.BlockList`. An IPv4 client seen
 * on a dual-stack socket (`::ffff:192.0.2.1`) matches its IPv4 entries.
 */
import { BlockList, isIP } from 'node:net';

/** One entry: its address, family and prefix length, or why it is not one. */
function parseEntry(entry: string): { address: string; family: 'ipv4' | 'ipv6'; prefix: number } | string {
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return `${entry} is not an IP address or CIDR`;
  const max = version === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return `${entry} has a bad prefix length`;
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix: Number(prefixText) };
}

/** The problems of a list setting, for the settings' validation. */
export function peerListProblems(field: string, entries: unknown): { field: string; reasons: string[] }[] {
  if (!Array.isArray(entries)) return [];
  const reasons = entries
    .map((e) => (typeof e === 'string' ? parseEntry(e) : `${String(e)} is not a string`))
    .filter((r) => typeof r === 'string');
  return reasons.length === 0 ? [] : [{ field, reasons }];
}

/** Addresses whose answer is remembered, at most; then the memory starts again. */
const SEEN_MAX = 4096;

export class TrustedPeers {
  readonly #list = new BlockList();
  readonly #seen = new Map<string, boolean>();
  /** Whether the list is empty (nobody is trusted). */
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const parsed = parseEntry(entry);
      if (typeof parsed === 'string') throw new Error(parsed);
      this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
  }

  /** Whether `address` is in the list. Answers are remembered: a BlockList check crosses into C++. */
  has(address: string | undefined): boolean {
    if (this.empty || address === undefined) return false;
    const known = this.#seen.get(address);
    if (known !== undefined) return known;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    const version = mapped !== undefined ? 4 : isIP(address);
    const found = version !== 0 && this.#list.check(mapped ?? address, version === 4 ? 'ipv4' : 'ipv6');
    if (this.#seen.size >= SEEN_MAX) this.#seen.clear();
    this.#seen.set(address, found);
    return found;
  }
}
