/** What every SMTP connection of a server shares: the application, TLS, trusted peers, metrics, limits. */
import type { AnyServedApplication } from '../app/request-handler.js';
import type { ApplicationSettings } from '../app/settings.js';
import type { TrustedPeers } from '../app/trusted-peers.js';
import type { ClientLimits } from '../net/client-limits.js';
import type { SessionFeatures } from '../protocol/decision.js';
import type { TLSConfig } from '../net/tls.js';
import type { ServerMetrics } from './metrics.js';
import type { Socket } from 'node:net';
import type { LocalEnd } from '../net/listeners.js';
import type { Peer } from '../protocol/session-info.js';

/** What every connection of a server shares. */
export interface ConnectionContext {
  readonly app: AnyServedApplication;
  readonly settings: ApplicationSettings;
  readonly tls: TLSConfig | undefined;
  /** The load balancers whose connections start with a PROXY header (`proxyFrom`). */
  readonly proxies: TrustedPeers;
  /** The peers offered XCLIENT and XFORWARD (`xclientFrom`). */
  readonly xclient: TrustedPeers;
  /** The Prometheus counters, when `metricsListen` is set. */
  readonly metrics: ServerMetrics | null;
  /** The per-client limits (connections, rate, AUTH failures). */
  readonly limits: ClientLimits;
  /** What every session of the server offers: one object for all its connections. */
  readonly features: SessionFeatures;
}

/** The session features of a server with `tls` (or none), `settings` and its XCLIENT peers. */
export function sessionFeatures(tls: TLSConfig | undefined, settings: ApplicationSettings, xclient: TrustedPeers): SessionFeatures {
  return { tls: tls !== undefined, auth: settings.authenticate !== undefined, xclient: (address) => xclient.has(address) };
}

/** RFC 4954 §4: a SASL line may be 12288 bytes, more than an ordinary command line. */
const AUTH_LINE_LIMIT = 12288 + 2;

/** The longest command line a connection takes: longer with AUTH, for its SASL lines. */
export function commandLineLimit(settings: ApplicationSettings): number {
  return settings.authenticate === undefined ? settings.maxLineLength : Math.max(settings.maxLineLength, AUTH_LINE_LIMIT);
}

/** The client a connection's session starts with; `local`: where it connected, when the listener knows. */
export function peerOf(id: string, socket: Socket, local: LocalEnd | undefined): Peer {
  return {
    id,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localAddress: typeof local === 'string' ? local : (local?.address ?? socket.localAddress ?? ''),
    localPort: typeof local === 'object' ? local.port : (socket.localPort ?? 0),
  };
}

let sequence = 0;

/** A connection's id, as its log lines carry it: the process and a sequence number, in base 36. */
export function nextConnectionId(): string {
  return `${process.pid.toString(36)}.${(++sequence).toString(36)}`;
}
