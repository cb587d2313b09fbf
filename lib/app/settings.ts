/**
 * The settings of an SMTP application: the connection kit's (`kit-settings.ts`: who the server
 * is, TLS, I/O, per-client limits) and SMTP's own, by layer: protocol policy, message intake,
 * trusted peers, hooks and AUTH.
 */
import 'reflect-metadata';
import { ArrayNotEmpty, IsArray, IsBoolean, IsIn, IsInt, IsObject, IsOptional, IsString, Matches, Max, Min } from './validators.js';
import type { BareLineEndingPolicy } from '../protocol/data-decoder.js';
import { SASL_MECHANISMS, type AuthCredentials, type AuthDecision, type SaslMechanism } from '../protocol/sasl.js';
import type { SessionInfo } from '../protocol/session-info.js';
import { ConnectionKitSettings } from './kit-settings.js';
import type { DkimKey } from '../auth/sign.js';

export type { SNIResolver, TLSSettings } from './kit-settings.js';

/**
 * The `onConnect` setting: decides whether a client may start a session, before the banner. Return
 * nothing (or `true`) to greet it; return `false` to answer `554 5.7.1` instead of the banner, or
 * throw an `SMTPError` to answer with your own reply. After a 5xx the session only waits for QUIT
 * (RFC 5321 §3.1: every other command is answered 503); after a 4xx (say `421 4.7.0`) it closes
 * at once. Any other error is logged and answered `421 4.3.0`.
 *
 * @example
 * ```ts
 * const onConnect: ConnectHook = async ({ remoteAddress }) => !(await blocklist.has(remoteAddress));
 * new Application(Inbound, { onConnect });
 * ```
 */
export type ConnectHook = (session: SessionInfo) => void | boolean | Promise<void | boolean>;

/**
 * The `onHelo` setting: decides whether a HELO/EHLO name is accepted. Return nothing (or `true`)
 * to accept; return `false` to answer `550 5.7.1`, or throw an `SMTPError` for your own reply.
 * A refused client must greet again before MAIL; any other error is logged and answered `451 4.3.0`.
 *
 * @example
 * ```ts
 * const onHelo: HeloHook = (name, session) => name !== 'localhost' || session.remoteAddress === '127.0.0.1';
 * new Application(Inbound, { onHelo });
 * ```
 */
export type HeloHook = (name: string, session: SessionInfo) => void | boolean | Promise<void | boolean>;

/**
 * Checks credentials for AUTH. See {@link AuthCredentials} for what each mechanism gives and
 * {@link AuthDecision} for what to answer; throw an `SMTPError` for a reply of your own
 * (for example `454 4.7.0` when the user store is down).
 *
 * @example
 * ```ts
 * const authenticate: Authenticator = async (credentials) =>
 *   credentials.mechanism === 'PLAIN' && (await users.check(credentials.username, credentials.password));
 * new Application(Inbound, { tls: { key, cert }, authenticate });
 * ```
 */
export type Authenticator = (credentials: AuthCredentials, session: SessionInfo) => AuthDecision | Promise<AuthDecision>;

/**
 * The settings Sirocco itself reads, with their defaults. Every limit is on by default.
 * Unknown keys given to the {@link Application} are kept beside these for the handler's own use.
 *
 * @example
 * ```ts
 * const app = new Application(Inbound, { hostname: 'mx.example.com', maxMessageSize: 10 * 1024 * 1024 });
 * app.settings.maxRecipients; // 100, the default
 * ```
 */
export class ApplicationSettings extends ConnectionKitSettings {
  // Protocol policy: what the server offers and accepts.

  /** The largest message accepted, in bytes (RFC 1870 SIZE). Default 25 MiB. */
  @IsInt()
  @Min(1)
  maxMessageSize: number = 25 * 1024 * 1024;

  /** Recipients accepted per transaction; past it RCPT is answered 452 (RFC 5321 §4.5.3.1.8). */
  @IsInt()
  @Min(1)
  maxRecipients: number = 100;

  /** The longest command line, in bytes with its CRLF; RFC 5321 §4.5.3.1.4 sets 512 as the least. */
  @IsInt()
  @Min(512)
  @Max(65536)
  maxLineLength: number = 1024;

  /** Syntax and sequence errors allowed per connection before `421 4.7.0` and close. */
  @IsInt()
  @Min(1)
  maxBadCommands: number = 20;

  /**
   * Speak LMTP (RFC 2033) instead of SMTP: `LHLO` greets (HELO and EHLO are refused), and after
   * the data each accepted recipient gets its own reply. Mostly served on a Unix socket.
   */
  @IsBoolean()
  lmtp: boolean = false;

  /** Offer CHUNKING and BINARYMIME (RFC 3030): the BDAT command. */
  @IsBoolean()
  chunking: boolean = true;

  /**
   * Offer DSN (RFC 3461): RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT, parsed onto the
   * envelope. Off by default: offering it promises delivery notifications the handler must send.
   */
  @IsBoolean()
  dsn: boolean = false;

  /** Whether SMTPUTF8 (RFC 6531) is offered. */
  @IsBoolean()
  smtputf8: boolean = true;

  /** What to do with a bare CR or LF inside a message body; see {@link BareLineEndingPolicy}. */
  @IsIn(['normalize', 'reject', 'keep'])
  bareLineEndings: BareLineEndingPolicy = 'normalize';

  /**
   * RFC 5321's command grammar to the letter: `MAIL FROM: <a@b>` (a space before the path) is
   * answered 501, and a bare LF never ends a command line (it stays in the line, which is then
   * refused for its control character). Off by default, as in Postfix and the other servers:
   * many clients send that space, and refusing it loses their mail for no one's gain.
   */
  @IsBoolean()
  strictSyntax: boolean = false;

  /** Refuse MAIL with `530 5.7.0` until TLS is up. Needs `tls`. */
  @IsBoolean()
  requireTLS: boolean = false;

  /** Ask clients for a certificate (not required; see `request.session.tls`). */
  @IsBoolean()
  requestClientCertificate: boolean = false;

  // Message intake: handlers, their time and memory, reading.

  /**
   * Milliseconds a handler hook (`prepare`, `rcpt`, `data`) may take before the client is answered
   * `451 4.3.0` and the session goes on; 0 waits for ever. The default, 5 minutes, answers before
   * a client gives up waiting for the reply to DATA (10 minutes, RFC 5321 §4.5.3.2.6).
   */
  @IsInt()
  @Min(0)
  handlerTimeout: number = 5 * 60 * 1000;

  /**
   * Bytes of message bodies held whole at once by buffered handlers, across every connection of
   * the application. A transaction that would pass it is answered `452 4.3.1`, at DATA/BDAT when
   * it can be known then, else after the data. Streaming handlers hold no body and do not count.
   * Default 256 MiB.
   */
  @IsInt()
  @Min(1024)
  bodyMemoryBudget: number = 256 * 1024 * 1024;

  /**
   * Read plain TCP and Unix sockets directly into one buffer shared by every connection, the way
   * Node's `onread` socket option does, instead of through Node's readable stream. It saves about
   * a tenth of the CPU per message for small messages. It relies on two undocumented parts of
   * Node, checked on every socket (without them the stream is used); turn it off to read every
   * socket through the stream. TLS sockets are always read through the stream.
   */
  @IsBoolean()
  directReads: boolean = true;

  // Trusted peers: load balancers and proxies that name the client.

  /**
   * The load balancers allowed to name the client (addresses or CIDRs, IPv4 and IPv6). A
   * connection from one of them must start with a PROXY protocol header (v1 or v2), read before
   * the banner; the client it names is the address every part sees. Empty by default.
   */
  @IsArray()
  @IsString({ each: true })
  proxyFrom: string[] = [];

  /** Milliseconds a trusted proxy has to send its whole PROXY header before the connection is closed. */
  @IsInt()
  @Min(1)
  proxyTimeout: number = 10 * 1000;

  /**
   * The peers (addresses or CIDRs) offered XCLIENT and XFORWARD (Postfix's XCLIENT_README and
   * XFORWARD_README): a content filter or proxy in front naming the original client. Empty by default.
   */
  @IsArray()
  @IsString({ each: true })
  xclientFrom: string[] = [];

  // Before the banner, and hooks.

  /**
   * Milliseconds to wait before the banner, catching clients that talk first (spam software
   * often does; RFC 5321 §3.1 has the client wait for the greeting): one that sends anything
   * meanwhile is answered `554 5.5.1` and closed. 0 (the default) greets at once.
   */
  @IsInt()
  @Min(0)
  greetDelay: number = 0;

  /** With `greetDelay`: send the greeting's first line (`220-`) at once and the rest after the wait. */
  @IsBoolean()
  greetTeaser: boolean = false;

  /** Decides at connect, before the banner, whether a client may go on; see {@link ConnectHook}. */
  @IsOptional()
  onConnect?: ConnectHook | undefined;

  /** Decides whether a HELO/EHLO name is accepted; see {@link HeloHook}. */
  @IsOptional()
  onHelo?: HeloHook | undefined;

  // AUTH.

  /** Checks AUTH credentials; without it AUTH is not offered. */
  @IsOptional()
  authenticate?: Authenticator | undefined;

  /** The SASL mechanisms offered, in this order. */
  @IsArray()
  @ArrayNotEmpty()
  @IsIn(SASL_MECHANISMS, { each: true })
  authMechanisms: SaslMechanism[] = ['PLAIN', 'LOGIN'];

  /** Refuse MAIL with `530 5.7.0` until the client has authenticated. Needs `authenticate`. */
  @IsBoolean()
  requireAuth: boolean = false;

  /** Failed AUTH attempts per connection before `421 4.7.0` and close. */
  @IsInt()
  @Min(1)
  maxAuthFailures: number = 3;

  // Mail authentication of incoming mail.

  /**
   * Verify each message's SPF (RFC 7208), DKIM signatures (RFC 6376, 8463), DMARC (RFC 7489) and
   * ARC chain (RFC 8617): the results are on `request.authentication` and in the
   * `Authentication-Results` field the ready handlers add; such a field from outside carrying our
   * `authservId` is removed first (RFC 8601 §5). Off by default (no DNS lookups, no cost).
   */
  @IsBoolean()
  mailAuth: boolean = false;

  /**
   * With `mailAuth`: a message that fails DMARC under its domain's `p=reject` is refused
   * `550 5.7.1` after the data; under `p=quarantine` it is accepted with
   * `request.authentication.quarantine` true. Off by default: the results are only reported.
   */
  @IsBoolean()
  dmarcEnforce: boolean = false;

  /**
   * With `mailAuth`: seal each message whose ARC chain is absent or valid (RFC 8617), as
   * `domain`'s `selector` with an RSA key (`privateKey` PEM, or `keyFile`); `Relay` then sends the
   * next ARC set on top of what it forwards. Default: no sealing.
   */
  @IsOptional()
  @IsObject()
  arcSeal?: Pick<DkimKey, 'domain' | 'selector' | 'privateKey' | 'keyFile'> | undefined;

  /** The authserv-id of the `Authentication-Results` fields (RFC 8601 §2.5). Default: `hostname`. */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9.-]{1,253}$/, { message: 'authservId must be a host name' })
  authservId?: string | undefined;

  /** The time for all of one message's authentication lookups, in ms; past it they are `temperror`. */
  @IsInt()
  @Min(100)
  @Max(60_000)
  mailAuthTimeout: number = 10_000;

  /** DNS servers for mail authentication and for `Deliver`, as `address` or `address:port`. Default: the system's. */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  dnsServers?: string[] | undefined;

  // Operations: metrics, shutdown, the cluster.

  /**
   * Where to serve Prometheus metrics (`GET /metrics`): `port` listens on 127.0.0.1 only,
   * `:port` on every interface, `host:port` or `[v6]:port` where it says. Under `start(n)` the primary serves the sum of every worker.
   * Off by default (prom-client is then not even loaded).
   */
  @IsOptional()
  @Matches(/^(?:(?:\[[0-9a-fA-F:.]+\]|[^:\s[\]]*):)?\d{1,5}$/, { message: 'metricsListen must be port, host:port or [v6]:port' })
  metricsListen?: string | undefined;

  /** Milliseconds `close()` waits for open transactions before it drops their connections. */
  @IsInt()
  @Min(0)
  closeTimeout: number = 30 * 1000;

  /**
   * Under `start(n)`: how often the primary gives every worker new TLS session-ticket keys (the
   * same for all, so a client resumes its TLS session on any worker). Default 12 hours.
   */
  @IsInt()
  @Min(60 * 1000)
  ticketKeyRotation: number = 12 * 60 * 60 * 1000;
}

/**
 * The settings a user may pass: every known setting optional, any other key kept.
 *
 * @example
 * ```ts
 * const settings: SettingsInput = { hostname: 'mx.example.com', domain: 'example.com' };
 * new Application(Inbound, settings);
 * ```
 */
export type SettingsInput = Partial<ApplicationSettings> & Record<string, unknown>;
