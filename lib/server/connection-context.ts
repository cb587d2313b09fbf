/** What every SMTP connection of a server shares: the application, TLS, trusted peers, metrics, limits. */
import type { AnyServedApplication } from '../app/request-handler.js';
import type { ApplicationSettings } from '../app/settings.js';
import type { TrustedPeers } from '../app/trusted-peers.js';
import type { ClientLimits } from '../net/client-limits.js';
import type { SessionFeatures } from '../protocol/decision.js';
import type { TLSConfig } from '../net/tls.js';
import type { ServerMetrics } from './metrics.js';

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
