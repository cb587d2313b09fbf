/** The settings of a POP3 server, and how they are checked. */
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { LimitStore } from '../app/limit-store.js';
import type { SettingsProblem } from '../app/settings-schema.js';
import { nearestName } from '../app/setting-names.js';
import { peerListProblems } from '../app/trusted-peers.js';
import type { AuthCredentials, AuthDecision } from '../protocol/sasl.js';
import type { Pop3Store } from './maildir-store.js';

/**
 * What a POP3 password check knows of the client.
 *
 * @example
 * ```ts
 * const check = (c: AuthCredentials, client: Pop3Client) => client.secure && users.get(c.username) === c.password;
 * ```
 */
export interface Pop3Client {
  /** The connection's id in the logs. */
  readonly id: string;
  /** Which protocol asks: always `'pop3'` here. */
  readonly protocol: 'pop3';
  /** The client's address; `''` when it is not known. */
  readonly remoteAddress: string;
  /** The client's port. */
  readonly remotePort: number;
  /** The address the client connected to. */
  readonly localAddress: string;
  /** The port the client connected to. */
  readonly localPort: number;
  /** Whether the connection is under TLS. */
  readonly secure: boolean;
}

/**
 * Checks a POP3 user's password (USER and PASS), with the semantics of SMTP AUTH PLAIN: `true`
 * or the user's canonical name lets the user in, anything else refuses. An SMTP `Authenticator`
 * can be given as it is; it is handed a {@link Pop3Client} in place of the SMTP session.
 *
 * @example
 * ```ts
 * const authenticate: Pop3Authenticator = (c) => users.get(c.username) === c.password;
 * ```
 */
export type Pop3Authenticator = (credentials: AuthCredentials, client: Pop3Client) => AuthDecision | Promise<AuthDecision>;

/**
 * Settings of a {@link Pop3Server}. The limits have the names and defaults of the SMTP server's.
 *
 * @example
 * ```ts
 * const options: Pop3ServerOptions = { store: new MaildirStore('./mail', { perUser: true }), authenticate, tls: { key, cert } };
 * ```
 */
export interface Pop3ServerOptions {
  /** Where each user's mail is. */
  readonly store: Pop3Store;
  /** Checks USER and PASS. */
  authenticate(credentials: AuthCredentials, client: Pop3Client): AuthDecision | Promise<AuthDecision>;
  /** The name in the greeting. Default: the machine's host name. */
  readonly hostname?: string;
  /** Key and certificate: STLS is offered (and TLS from the first byte with `implicitTLS`). */
  readonly tls?: SecureContextOptions;
  /** TLS from the first byte (POP3S, port 995). Needs `tls`. */
  readonly implicitTLS?: boolean;
  /** Take USER and PASS without TLS. Default false: send STLS first (RFC 2595 §2.3 advice). */
  readonly allowInsecureAuth?: boolean;
  /** Milliseconds without a command before the session is closed. Default 600 000 (RFC 1939 §3: at least 10 minutes). */
  readonly idleTimeout?: number;
  /** Milliseconds a TLS handshake may take. Default 10 000. */
  readonly handshakeTimeout?: number;
  /** The longest command line, CRLF included. Default 512 (RFC 2449 §4 sets 255 for commands; longer passwords exist). */
  readonly maxLineLength?: number;
  /** Input held while a command runs before the client stops being read. Default 65 536. */
  readonly maxBufferedBytes?: number;
  /** Sessions at once; past it a client gets `-ERR [SYS/TEMP]` and is closed. Default 100. */
  readonly maxConnections?: number;
  /** Open sessions per client address (0: no limit). Default 20. */
  readonly maxConnectionsPerIp?: number;
  /** Open sessions per /24 (IPv4) or /64 (IPv6) network (0: no limit). Default 100. */
  readonly maxConnectionsPerNet?: number;
  /** New sessions per client address within `limitWindow` (0: no limit). Default 100. */
  readonly connectionRatePerIp?: number;
  /**
   * Wrong passwords per client address within `limitWindow` (0: no limit), checks still running
   * included; past it PASS is refused `-ERR [AUTH]` without a check and the session closes. Default 10.
   */
  readonly authFailuresPerIp?: number;
  /** The window of `connectionRatePerIp` and `authFailuresPerIp`, in milliseconds. Default 60 000. */
  readonly limitWindow?: number;
  /** How much of an IPv6 address names one client for the limits. Default 64. */
  readonly ipv6PrefixLength?: number;
  /** Addresses and CIDRs the limits do not count. Default loopback. */
  readonly limitExempt?: readonly string[];
  /** Where the per-client counts live: give the SMTP server's store to count both protocols' password failures together. Default: this process's memory. */
  readonly limitStore?: LimitStore;
  /** A pino logger; default one at `SIROCCO_LOG_LEVEL` (info). */
  readonly logger?: Logger;
}

/** The numeric settings: their least value and their default. */
export const POP3_NUMBERS = {
  idleTimeout: [1000, 600_000],
  handshakeTimeout: [100, 10_000],
  maxLineLength: [64, 512],
  maxBufferedBytes: [1024, 65_536],
  maxConnections: [1, 100],
  maxConnectionsPerIp: [0, 20],
  maxConnectionsPerNet: [0, 100],
  connectionRatePerIp: [0, 100],
  authFailuresPerIp: [0, 10],
  limitWindow: [1000, 60_000],
  ipv6PrefixLength: [32, 64],
} as const;

/** Every option a POP3 server takes: the compiler keeps this list and the interface the same. */
const POP3_OPTION_NAMES = Object.keys({
  store: true,
  authenticate: true,
  hostname: true,
  tls: true,
  implicitTLS: true,
  allowInsecureAuth: true,
  idleTimeout: true,
  handshakeTimeout: true,
  maxLineLength: true,
  maxBufferedBytes: true,
  maxConnections: true,
  maxConnectionsPerIp: true,
  maxConnectionsPerNet: true,
  connectionRatePerIp: true,
  authFailuresPerIp: true,
  limitWindow: true,
  ipv6PrefixLength: true,
  limitExempt: true,
  limitStore: true,
  logger: true,
} satisfies Record<keyof Pop3ServerOptions, true>);

/** What is wrong with `options`, field by field. */
export function problemsOf(options: Pop3ServerOptions): SettingsProblem[] {
  const problems: SettingsProblem[] = [];
  // A misspelt option would otherwise be its default, silently (as the SMTP settings refuse them).
  for (const name of Object.keys(options)) {
    if (POP3_OPTION_NAMES.includes(name)) continue;
    const near = nearestName(name, POP3_OPTION_NAMES);
    problems.push({ field: name, reasons: [`unknown option${near === undefined ? '' : `, did you mean ${near}?`}`] });
  }
  const store = options.store as Partial<Pop3Store> | undefined;
  if (typeof store?.open !== 'function')
    problems.push({ field: 'store', reasons: ['store must be a Pop3Store (MaildirStore, or an inbox)'] });
  if (typeof options.authenticate !== 'function') problems.push({ field: 'authenticate', reasons: ['authenticate must be a function'] });
  if (options.implicitTLS === true && options.tls === undefined)
    problems.push({ field: 'implicitTLS', reasons: ['implicitTLS needs the tls setting'] });
  problems.push(...peerListProblems('limitExempt', options.limitExempt));
  for (const [field, [min]] of Object.entries(POP3_NUMBERS) as [keyof typeof POP3_NUMBERS, readonly [number, number]][]) {
    const value = options[field];
    if (value !== undefined && !(Number.isInteger(value) && value >= min && (field !== 'ipv6PrefixLength' || value <= 128))) {
      problems.push({
        field,
        reasons: [`${field} must be a whole number of at least ${min}${field === 'ipv6PrefixLength' ? ' and at most 128' : ''}`],
      });
    }
  }
  return problems;
}

/** A numeric setting, or its default. */
export function pop3Number(options: Pop3ServerOptions, field: keyof typeof POP3_NUMBERS): number {
  return options[field] ?? POP3_NUMBERS[field][1];
}
