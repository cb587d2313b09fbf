/** The settings of a POP3 server, and how they are checked. */
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { SettingsProblem } from '../app/settings-schema.js';
import type { Authenticator } from '../app/settings.js';
import { peerListProblems } from '../app/trusted-peers.js';
import type { Pop3Store } from './mailbox.js';

/**
 * Settings of a {@link Pop3Server}.
 *
 * @example
 * ```ts
 * const options: Pop3ServerOptions = { store: new MaildirStore('./mail', { perUser: true }), authenticate, tls: { key, cert } };
 * ```
 */
export interface Pop3ServerOptions {
  /** Where each user's mail is. */
  readonly store: Pop3Store;
  /** Checks USER and PASS: called as for SMTP AUTH PLAIN (`mechanism: 'PLAIN'`). */
  readonly authenticate: Authenticator;
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
  /** The longest command line, CRLF included. Default 512 (RFC 2449 §4 sets 255 for commands; longer passwords exist). */
  readonly maxLineLength?: number;
  /** Sessions at once; past it a client gets `-ERR [SYS/TEMP]` and is closed. Default 100. */
  readonly maxConnections?: number;
  /**
   * Wrong passwords per client address within `limitWindow` (0: no limit); past it PASS is refused
   * `-ERR [AUTH]` without a check and the session closes. Default 10, as for SMTP AUTH.
   */
  readonly authFailuresPerIp?: number;
  /** The window of `authFailuresPerIp`, in milliseconds. Default 60 000. */
  readonly limitWindow?: number;
  /** Addresses and CIDRs the limit does not count. Default loopback. */
  readonly limitExempt?: readonly string[];
  /** A pino logger; default one at `SIROCCO_LOG_LEVEL` (info). */
  readonly logger?: Logger;
}

/** What is wrong with `options`, field by field. */
export function problemsOf(options: Pop3ServerOptions): SettingsProblem[] {
  const problems: SettingsProblem[] = [];
  const store = options.store as Partial<Pop3Store> | undefined;
  if (typeof store?.open !== 'function')
    problems.push({ field: 'store', reasons: ['store must be a Pop3Store (MaildirStore, or an inbox)'] });
  if (typeof options.authenticate !== 'function') problems.push({ field: 'authenticate', reasons: ['authenticate must be a function'] });
  if (options.implicitTLS === true && options.tls === undefined)
    problems.push({ field: 'implicitTLS', reasons: ['implicitTLS needs the tls setting'] });
  problems.push(...peerListProblems('limitExempt', options.limitExempt));
  for (const [field, min] of [
    ['idleTimeout', 1000],
    ['maxLineLength', 64],
    ['maxConnections', 1],
    ['authFailuresPerIp', 0],
    ['limitWindow', 1000],
  ] as const) {
    const value = options[field];
    if (value !== undefined && !(Number.isInteger(value) && value >= min)) {
      problems.push({ field, reasons: [`${field} must be a whole number of at least ${min}`] });
    }
  }
  return problems;
}
