/**
 * The EHLO reply (RFC 5321 §4.1.1.1): the greeting line, then one line per extension offered.
 * Pure.
 */
import { keepingLast, nameInReply, namedReplyParts, reply, type NamedReplyParts, type Reply } from './reply.js';
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

/** What a server offers to every client: fixed for the server's life. */
export interface ServerOffer {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly smtputf8: boolean;
  readonly authMechanisms: readonly string[];
  readonly chunking: boolean;
  readonly dsn: boolean;
}

/** Per server offer, the EHLO reply's formatted parts for each of the sixteen sets of per-session flags. */
const tails = new WeakMap<ServerOffer, (NamedReplyParts | undefined)[]>();

/**
 * The EHLO reply, {@link ehloReply}'s text, with the extension lines formatted once per server
 * and set of per-session flags: per client, only the client's name is put between the parts.
 */
export function ehloReplyFor(
  offer: ServerOffer,
  clientName: string,
  starttls: boolean,
  auth: boolean,
  requireTls: boolean,
  xclient: boolean,
): Reply {
  let byFlags = tails.get(offer);
  if (byFlags === undefined) {
    byFlags = [];
    tails.set(offer, byFlags);
  }
  const flags = (starttls ? 1 : 0) | (auth ? 2 : 0) | (requireTls ? 4 : 0) | (xclient ? 8 : 0);
  let parts = byFlags[flags];
  if (parts === undefined) {
    const lines = extensionLines({
      hostname: offer.hostname,
      maxMessageSize: offer.maxMessageSize,
      smtputf8: offer.smtputf8,
      starttls,
      auth: auth ? offer.authMechanisms : [],
      chunking: offer.chunking,
      dsn: offer.dsn,
      requireTls,
      xclient,
    });
    parts = namedReplyParts(250, undefined, `${offer.hostname} greets `, lines);
    byFlags[flags] = parts;
  }
  return nameInReply(parts, clientName);
}

/** The HELO reply: the server's host name, the same reply each time. */
export const heloReply: (hostname: string) => Reply = keepingLast((hostname) => reply(250, undefined, hostname));
