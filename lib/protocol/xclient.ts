/**
 * XCLIENT and XFORWARD (Postfix's XCLIENT_README and XFORWARD_README): a trusted peer in front
 * (a proxy, a content filter) names the original client. Pure: the command's attribute words in,
 * typed attributes or an error text out. Values are xtext (RFC 3461 §4); `[UNAVAILABLE]` and
 * `[TEMPUNAVAIL]` say the value is not known.
 */
import { isIpAddress } from './address.js';
import { decodeXtext } from './dsn.js';
import type { Forwarded, Peer } from './session-info.js';

/** The attributes each command takes, in the order the EHLO reply lists them. */
export const XCLIENT_ATTRIBUTES = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'LOGIN', 'DESTADDR', 'DESTPORT'] as const;
export const XFORWARD_ATTRIBUTES = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'IDENT', 'SOURCE'] as const;

/** A value, or `undefined` when the peer said it is unavailable. */
export type Attributes = Readonly<Record<string, string | undefined>>;

const UNAVAILABLE = new Set(['[UNAVAILABLE]', '[TEMPUNAVAIL]']);

/** Parses `NAME=value …` for the command; an error text names the bad attribute. */
export function parseAttributes(words: readonly string[], allowed: readonly string[]): Attributes | { readonly error: string } {
  if (words.length === 0) return { error: 'at least one attribute is needed' };
  const found: Record<string, string | undefined> = {};
  for (const word of words) {
    const eq = word.indexOf('=');
    const name = (eq === -1 ? word : word.slice(0, eq)).toUpperCase();
    if (eq <= 0 || !allowed.includes(name)) return { error: `bad attribute: ${word.slice(0, 40)}` };
    const raw = word.slice(eq + 1);
    if (UNAVAILABLE.has(raw.toUpperCase())) {
      found[name] = undefined;
      continue;
    }
    const value = decodeXtext(raw, name);
    if (typeof value !== 'string') return { error: value.error };
    const why = checkValue(name, value);
    if (why !== undefined) return { error: why };
    found[name] = name === 'ADDR' || name === 'DESTADDR' ? address(value) : value;
  }
  return found;
}

function checkValue(name: string, value: string): string | undefined {
  switch (name) {
    case 'ADDR':
    case 'DESTADDR':
      return !isIpAddress(address(value)) ? `${name} is not an IP address` : undefined;
    case 'PORT':
    case 'DESTPORT':
      return /^\d{1,5}$/.test(value) && Number(value) <= 65535 ? undefined : `${name} is not a port number`;
    case 'PROTO':
      return /^E?SMTP$/i.test(value) ? undefined : 'PROTO must be SMTP or ESMTP';
    case 'SOURCE':
      return /^(LOCAL|REMOTE)$/i.test(value) ? undefined : 'SOURCE must be LOCAL or REMOTE';
    default:
      return value === '' || /\s/.test(value) ? `${name} must be one word` : undefined;
  }
}

/** Postfix writes IPv6 addresses as `IPV6:2001:db8::1`. */
function address(value: string): string {
  return /^ipv6:/i.test(value) ? value.slice(5) : value;
}

/** XFORWARD's attributes added to what earlier XFORWARD commands of the transaction said. */
export function forwardedWith(old: Forwarded | undefined, a: Attributes): Forwarded {
  const f = old ?? {};
  const pick = (name: string, before: string | undefined): string | undefined => (name in a ? a[name] : before);
  return {
    name: pick('NAME', f.name),
    addr: pick('ADDR', f.addr),
    port: pick('PORT', f.port),
    proto: pick('PROTO', f.proto),
    helo: pick('HELO', f.helo),
    ident: pick('IDENT', f.ident),
    source: pick('SOURCE', f.source),
  };
}

/**
 * XCLIENT's attributes as the session's facts: the peer they name (an unavailable value keeps
 * what was known), the HELO name and protocol, and the user (`null`: LOGIN not given).
 */
export function clientNamed(peer: Peer, a: Attributes): { peer: Peer; heloName: string; esmtp: boolean; user: string | undefined | null } {
  return {
    peer: {
      ...peer,
      // An address the filter could not give is unknown: never the filter's own (trust is not inherited).
      remoteAddress: 'ADDR' in a ? (a.ADDR ?? '') : peer.remoteAddress,
      remotePort: 'PORT' in a ? Number(a.PORT ?? 0) : 'ADDR' in a ? 0 : peer.remotePort,
      localAddress: a.DESTADDR ?? peer.localAddress,
      localPort: a.DESTPORT === undefined ? peer.localPort : Number(a.DESTPORT),
      clientName: 'NAME' in a ? a.NAME : peer.clientName,
    },
    heloName: a.HELO ?? '',
    esmtp: a.PROTO?.toUpperCase() === 'ESMTP',
    user: 'LOGIN' in a ? a.LOGIN : null,
  };
}
