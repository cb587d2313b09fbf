/** The settings of a POP3 server: the connection kit's schema, with POP3's own defaults and options. */
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import 'reflect-metadata';
import { ConnectionKitSettings } from '../app/kit-settings.js';
import type { LimitStore } from '../app/limit-store.js';
import { kitProblems, SettingsError, unknownKeys } from '../app/settings-schema.js';
import { settingNames } from '../app/setting-names.js';
import { IsInt, Max, Min } from '../app/validators.js';
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

/**
 * The POP3 server's settings: the connection kit's (names, checks and the limits' defaults shared
 * with SMTP) and POP3's own. What {@link Pop3Server} validates its options into.
 *
 * @example
 * ```ts
 * const settings = pop3Settings({ store, authenticate, idleTimeout: 600_000 });
 * settings.maxConnections; // 100, POP3's default
 * ```
 */
export class Pop3Settings extends ConnectionKitSettings {
  /** Where each user's mail is. */
  store!: Pop3Store;

  /** Checks USER and PASS. */
  authenticate!: Pop3Authenticator;

  /** The longest command line, CRLF included (RFC 2449 §4 sets 255 for commands; longer passwords exist). Default 512. */
  @IsInt()
  @Min(64)
  @Max(65536)
  maxLineLength: number = 512;

  /** Milliseconds without a command before the session is closed. Default 600 000 (RFC 1939 §3: at least 10 minutes). */
  @Min(1000)
  override idleTimeout: number = 600_000;

  /** Milliseconds a TLS handshake may take. Default 10 000. */
  @Min(100)
  override handshakeTimeout: number = 10_000;

  /** Input held while a command runs before the client stops being read. Default 65 536. */
  override maxBufferedBytes: number = 65_536;

  /** Sessions at once; past it a client gets `-ERR [SYS/TEMP]` and is closed. Default 100. */
  override maxConnections: number = 100;

  /** The window of `connectionRatePerIp` and `authFailuresPerIp`, in milliseconds. Default 60 000. */
  @Min(1000)
  override limitWindow: number = 60_000;
}

let names: readonly string[] | undefined;

/**
 * `options` validated into {@link Pop3Settings} by the same schema as SMTP's settings; throws a
 * `SettingsError` naming every bad field (and the nearest name for a misspelt one).
 */
export function pop3Settings(options: Pop3ServerOptions): Pop3Settings {
  if (typeof options !== 'object' || options === null)
    throw new SettingsError([{ field: '(options)', reasons: ['options must be an object'] }]);
  const settings = Object.assign(new Pop3Settings(), options);
  const problems = kitProblems(settings);
  const store = options.store as Partial<Pop3Store> | undefined;
  if (typeof store?.open !== 'function')
    problems.push({ field: 'store', reasons: ['store must be a Pop3Store (MaildirStore, or an inbox)'] });
  if (typeof options.authenticate !== 'function') problems.push({ field: 'authenticate', reasons: ['authenticate must be a function'] });
  names ??= settingNames(Pop3Settings);
  problems.push(...unknownKeys(options, names));
  if (problems.length > 0) throw new SettingsError(problems);
  return settings;
}
