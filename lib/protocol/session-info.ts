/** The facts of a session as handlers and hooks see them. Types only. */
import { isIpAddress } from './address.js';
import type { ProxyInfo } from './proxy-header.js';

/**
 * The TLS facts of a connection, as handlers see them in `request.session.tls`.
 *
 * @example
 * ```ts
 * const tls = this.request.session.tls;
 * if (tls?.clientCertificateAuthorized) this.log.info({ protocol: tls.protocol }, 'client certificate ok');
 * ```
 */
export interface TLSInfo {
  /** `TLSv1.3`, `TLSv1.2` … */
  readonly protocol: string;
  /** The cipher suite's standard name. */
  readonly cipher: string;
  /** The server name the client asked for (SNI), if any. */
  readonly servername: string | undefined;
  /** The client's certificate, when `requestClientCertificate` is on and the client sent one. */
  readonly clientCertificate: Readonly<Record<string, unknown>> | undefined;
  /** Whether that certificate verified against the configured `ca`. */
  readonly clientCertificateAuthorized: boolean;
}

/**
 * Where the connection comes from and goes to: the socket's own addresses, or the ones a trusted
 * proxy (PROXY protocol) or peer (XCLIENT) named.
 *
 * @example
 * ```ts
 * const client = `${this.request.session.remoteAddress}:${this.request.session.remotePort}`;
 * ```
 */
export interface Peer {
  /** The connection's id, also in every log line of the connection. */
  readonly id: string;
  /** The client's IP address. */
  readonly remoteAddress: string;
  /** The client's port. */
  readonly remotePort: number;
  /** The server address the client connected to (on a Unix socket: its path, with `remoteAddress` `''`). */
  readonly localAddress: string;
  /** The server port the client connected to. */
  readonly localPort: number;
  /**
   * What a trusted load balancer's PROXY header said (the addresses above are then the ones it
   * named), or `undefined` for a direct connection.
   */
  readonly proxy?: ProxyInfo | undefined;
  /** The client's host name, when a trusted peer gave it with XCLIENT NAME. */
  readonly clientName?: string | undefined;
}

/**
 * The client as the logs name it: its address; `unix:` and the socket's path for a local client
 * on a Unix socket; `unknown` when a trusted proxy did not say (PROXY UNKNOWN, LOCAL).
 *
 * @example
 * ```ts
 * log.info({ client: clientLabel(session) }, 'refused');
 * ```
 */
export function clientLabel(peer: Peer): string {
  if (peer.remoteAddress !== '') return peer.remoteAddress;
  return onUnixSocket(peer) ? `unix:${peer.localAddress}` : 'unknown';
}

/**
 * Whether the client is a local process on a Unix socket (and not a client a proxy or an
 * XCLIENT peer left unknown).
 *
 * @example
 * ```ts
 * const where = onUnixSocket(session) ? 'local' : session.remoteAddress;
 * ```
 */
export function onUnixSocket(peer: Peer): boolean {
  return peer.remoteAddress === '' && peer.proxy === undefined && peer.localAddress !== '' && !isIpAddress(peer.localAddress);
}

/**
 * Facts about one connection, as they stood when the transaction began (or when a connection
 * hook ran).
 *
 * @example
 * ```ts
 * const { remoteAddress, heloName, secure, user } = this.request.session;
 * this.log.info({ remoteAddress, heloName, secure, user }, 'transaction');
 * ```
 */
export interface SessionInfo extends Peer {
  /** The name the client gave in HELO or EHLO. */
  readonly heloName: string;
  /** Whether the client greeted with EHLO. */
  readonly esmtp: boolean;
  /** Whether the connection is encrypted. */
  readonly secure: boolean;
  /** Protocol, cipher and client certificate, once TLS is up. */
  readonly tls: TLSInfo | undefined;
  /** The user AUTH established (or XCLIENT LOGIN named), if any. */
  readonly user: string | undefined;
  /** What a trusted peer said with XFORWARD about the original client, for logs and `Received`. */
  readonly forwarded?: Forwarded | undefined;
}

/**
 * What XFORWARD said about the original client, for logs and the `Received` header.
 *
 * @example
 * ```ts
 * const original = this.request.session.forwarded?.addr ?? this.request.session.remoteAddress;
 * ```
 */
export interface Forwarded {
  /** The original client's host name. */
  readonly name?: string | undefined;
  /** The original client's address. */
  readonly addr?: string | undefined;
  /** The original client's port. */
  readonly port?: string | undefined;
  /** `SMTP` or `ESMTP`, as the original client spoke. */
  readonly proto?: string | undefined;
  /** The name the original client gave in HELO or EHLO. */
  readonly helo?: string | undefined;
  /** The original transaction's id at the peer, for logs. */
  readonly ident?: string | undefined;
  /** `LOCAL` or `REMOTE`: whether the original client was on this machine. */
  readonly source?: string | undefined;
}

/**
 * @internal The session's facts as one frozen value. Every field is named: one object shape for
 * every session, where a spread of the peer (with or without `proxy` and `clientName`) took V8's
 * slow copy.
 */
export function sessionInfo(
  peer: Peer,
  heloName: string,
  esmtp: boolean,
  tls: TLSInfo | undefined,
  user: string | undefined,
  forwarded: Forwarded | undefined,
): SessionInfo {
  return Object.freeze({
    id: peer.id,
    remoteAddress: peer.remoteAddress,
    remotePort: peer.remotePort,
    localAddress: peer.localAddress,
    localPort: peer.localPort,
    proxy: peer.proxy,
    clientName: peer.clientName,
    heloName,
    esmtp,
    secure: tls !== undefined,
    tls,
    user,
    forwarded,
  });
}
