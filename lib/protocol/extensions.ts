/**
 * The EHLO reply (RFC 5321 §4.1.1.1): the greeting line, then one line per extension offered.
 * Pure.
 */
import { reply, type Reply } from './reply.js';
import { XCLIENT_ATTRIBUTES, XFORWARD_ATTRIBUTES } from './xclient.js';

/** What the server offers. */
export interface ExtensionOptions {
  readonly hostname: string;
  /** RFC 1870 SIZE; 0 advertises SIZE without a fixed limit. */
  readonly maxMessageSize: number;
  readonly smtputf8: boolean;
  /** Offer STARTTLS (TLS configured and not yet active). */
  readonly starttls: boolean;
  /** SASL mechanisms to offer; empty for none. */
  readonly auth: readonly string[];
  /** Offer CHUNKING and BINARYMIME (RFC 3030). */
  readonly chunking?: boolean;
  /** Offer DSN (RFC 3461). */
  readonly dsn?: boolean;
  /** Offer REQUIRETLS (RFC 8689): only when TLS is up. */
  readonly requireTls?: boolean;
  /** Offer XCLIENT and XFORWARD: only to trusted peers. */
  readonly xclient?: boolean;
}

/** The extension keywords offered, in the order they are listed. */
export function extensionLines(options: ExtensionOptions): string[] {
  const lines = ['PIPELINING', `SIZE ${options.maxMessageSize}`, '8BITMIME'];
  if (options.chunking === true) lines.push('CHUNKING', 'BINARYMIME');
  if (options.smtputf8) lines.push('SMTPUTF8');
  lines.push('ENHANCEDSTATUSCODES');
  if (options.dsn === true) lines.push('DSN');
  if (options.starttls) lines.push('STARTTLS');
  if (options.requireTls === true) lines.push('REQUIRETLS');
  if (options.xclient === true) lines.push(`XCLIENT ${XCLIENT_ATTRIBUTES.join(' ')}`, `XFORWARD ${XFORWARD_ATTRIBUTES.join(' ')}`);
  if (options.auth.length > 0) lines.push(`AUTH ${options.auth.join(' ')}`);
  return lines;
}

/** The whole EHLO reply; RFC 2034 §4 puts no enhanced code on it. */
export function ehloReply(options: ExtensionOptions, clientName: string): Reply {
  return reply(250, undefined, [`${options.hostname} greets ${clientName}`, ...extensionLines(options)].join('\n'));
}

/** The HELO reply. */
export function heloReply(hostname: string): Reply {
  return reply(250, undefined, hostname);
}
