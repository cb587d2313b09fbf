/**
 * The PROXY protocol preamble of a connection from a trusted load balancer: the header is read
 * whole before the banner, within `proxyTimeout` and {@link MAX_PROXY_HEADER} bytes. What comes
 * after it in the same read is the client's, and goes on to the session.
 *
 * A header that names no client address (v1 `UNKNOWN`, v2 `LOCAL`, `AF_UNSPEC` or `AF_UNIX`)
 * leaves the client unknown (`remoteAddress` `''`), never the proxy: the proxy's own address is
 * trusted and exempt, and what the proxy forwards is not (a v2 `LOCAL` health check gets a
 * session as an unknown client, which is all a check needs).
 */
import type { Peer } from '../protocol/session-info.js';
import { parseProxyHeader, type ProxyHeader } from '../protocol/proxy-header.js';

/** The outcome of one read: keep reading, give up (why), or the client's facts and the bytes after the header. */
export type PreambleStep = { readonly more: true } | { readonly error: string } | { readonly peer: Peer; readonly rest: Buffer };

export class ProxyPreamble {
  readonly #own: Peer;
  #pending: Buffer | null = null;

  /** Runs out after `timeoutMs` unless the header came whole or was refused first. */
  readonly #timer: NodeJS.Timeout | undefined;

  /**
   * @param own the connection's own facts (the proxy's address), which a `LOCAL` header keeps
   * @param onTimeout called when no whole header came within `timeoutMs` (given with it)
   */
  constructor(own: Peer, timeoutMs?: number, onTimeout?: () => void) {
    this.#own = own;
    if (timeoutMs !== undefined && onTimeout !== undefined) this.#timer = setTimeout(onTimeout, timeoutMs);
  }

  /** Stops the timeout: the connection ended, or gave up on the header. */
  cancel(): void {
    clearTimeout(this.#timer);
  }

  /** Takes one read. */
  push(chunk: Buffer): PreambleStep {
    const bytes = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    const parsed = parseProxyHeader(bytes);
    if ('more' in parsed) {
      this.#pending = bytes;
      return parsed;
    }
    this.#pending = null;
    this.cancel();
    if ('error' in parsed) return parsed;
    return { peer: this.#peerOf(parsed.header), rest: bytes.subarray(parsed.length) };
  }

  #peerOf(header: ProxyHeader): Peer {
    const own = this.#own;
    const { source, destination } = header;
    return {
      id: own.id,
      remoteAddress: source?.address ?? '',
      remotePort: source?.port ?? 0,
      localAddress: destination?.address ?? own.localAddress,
      localPort: destination?.port ?? own.localPort,
      proxy: {
        version: header.version,
        command: header.command,
        proxyAddress: own.remoteAddress,
        alpn: header.alpn,
        authority: header.authority,
        uniqueId: header.uniqueId,
        ssl: header.ssl,
        aws: header.aws,
      },
    };
  }
}
