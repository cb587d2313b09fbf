/**
 * Reverse-path and forward-path parsing (RFC 5321 §4.1.2), with the UTF-8 extensions of
 * RFC 6531 §3.3 when SMTPUTF8 is in effect. Pure.
 */

/** A parsed path. `address` is empty for the null reverse-path `<>`. */
export interface ParsedPath {
  readonly address: string;
  /** Whether the address holds non-ASCII characters. */
  readonly utf8: boolean;
}

/** Why a path was refused; the text is safe to show the client. */
export interface PathError {
  readonly error: string;
}

// RFC 5321 §4.1.2 atext, as a character class body (RFC 5322 §3.2.3).
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
const LABEL_UTF8 = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** ASCII character classes as lookup tables: the common, all-ASCII address is checked without regexes. */
const ATEXT_CHAR = charTable(ATEXT);
const LET_DIG = charTable('A-Za-z0-9');

function charTable(classBody: string): Uint8Array {
  const table = new Uint8Array(128);
  const re = new RegExp(`[${classBody}]`);
  for (let c = 0; c < 128; c++) table[c] = re.test(String.fromCharCode(c)) ? 1 : 0;
  return table;
}

// RFC 5321 §4.5.3.1
const MAX_LOCAL_PART = 64;
const MAX_DOMAIN = 255;
/** The longest path between `<` and `>` (RFC 5321 §4.5.3.1). */
export const MAX_PATH = 256;

/** Whether `text` (from `start` to `end`) holds characters outside US-ASCII. */
export function hasNonAscii(text: string, start = 0, end = text.length): boolean {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) > 0x7f) return true;
  return false;
}

/**
 * Parses the text between `FROM:`/`TO:` and the parameters: `<local@domain>`, `<>` and
 * `<Postmaster>` (each only where `options` allow), with an optional, ignored source route
 * (RFC 5321 §4.1.2 `A-d-l`, which servers must accept and may ignore).
 */
export function parsePath(text: string, options: PathOptions): ParsedPath | PathError {
  return parsePathIn(text, 0, text.length, options);
}

/** Where a path may be the null path or `<Postmaster>`, and whether it may hold UTF-8 (SMTPUTF8). */
export interface PathOptions {
  readonly allowNull: boolean;
  readonly allowPostmaster: boolean;
  readonly utf8: boolean;
}

/**
 * {@link parsePath} on `text` from `start` to `end`, checked in place: only the address is cut
 * out of it. The command parser hands it the line itself, which is a flat string; a string cut
 * from it is a view of it (a sliced string), which V8 reads several times slower, character by
 * character, than the line.
 */
export function parsePathIn(text: string, start: number, end: number, options: PathOptions): ParsedPath | PathError {
  const length = end - start;
  if (length < 2 || text.charCodeAt(start) !== 0x3c || text.charCodeAt(end - 1) !== 0x3e) {
    return { error: 'address must be enclosed in <>' };
  }
  if (length > MAX_PATH + 2) return { error: 'address too long' };
  let from = start + 1;
  const to = end - 1;
  if (from === to) {
    return options.allowNull ? { address: '', utf8: false } : { error: 'null address not allowed here' };
  }
  if (options.allowPostmaster && to - from === 10) {
    const inner = text.slice(from, to);
    if (inner.toLowerCase() === 'postmaster') return { address: inner, utf8: false };
  }
  if (text.charCodeAt(from) === 0x40) {
    const colon = text.indexOf(':', from);
    if (colon === -1 || colon >= to) return { error: 'bad source route' };
    const route = text.slice(from, colon).split(',');
    if (!route.every((hop) => hop.startsWith('@') && isDomain(hop.slice(1), options.utf8))) {
      return { error: 'bad source route' };
    }
    from = colon + 1;
  }
  return parseMailboxIn(text, from, to, options.utf8);
}

/** Parses `local-part@domain` (RFC 5321 §4.1.2 `Mailbox`). */
export function parseMailbox(mailbox: string, utf8: boolean): ParsedPath | PathError {
  return parseMailboxIn(mailbox, 0, mailbox.length, utf8);
}

/** {@link parseMailbox} on `text` from `start` to `end`, checked in place: the address is the one string cut. */
function parseMailboxIn(text: string, start: number, end: number, utf8: boolean): ParsedPath | PathError {
  // The last `@` (a quoted local part may hold others), found with a loop: String's lastIndexOf
  // is a call into V8's runtime, several times the cost of scanning a short address.
  let at = end - 1;
  while (at >= start && text.charCodeAt(at) !== 0x40) at--;
  if (at <= start) return { error: 'address must be local-part@domain' };
  if (!isLocalPart(text, start, at, utf8)) return { error: 'bad local part' };
  // Without SMTPUTF8 the local part is ASCII: one byte per character.
  if ((utf8 ? Buffer.byteLength(text.slice(start, at)) : at - start) > MAX_LOCAL_PART) return { error: 'local part too long' };
  if (!isDomainIn(text, at + 1, end, utf8)) return { error: 'bad domain' };
  const address = start === 0 && end === text.length ? text : text.slice(start, end);
  return { address, utf8: utf8 && hasNonAscii(address) };
}

/** Whether `text` from `start` to `end` is a domain or an address literal. */
function isDomainIn(text: string, start: number, end: number, utf8: boolean): boolean {
  const length = end - start;
  if (length > 0 && length <= MAX_DOMAIN && isAsciiDomain(text, start, end)) return true;
  const domain = text.slice(start, end);
  return isDomain(domain, utf8) || isAddressLiteral(domain);
}

/** A dot-atom: atoms of atext (any non-ASCII character too when `utf8`) joined by single dots; `text` from `start` to `end`. */
function isLocalPart(text: string, start: number, end: number, utf8: boolean): boolean {
  if (text.charCodeAt(start) === 0x22) return isQuotedString(text.slice(start, end), utf8);
  let atomLength = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (atomLength === 0) return false;
      atomLength = 0;
    } else if (c < 0x80 ? ATEXT_CHAR[c] === 1 : utf8) {
      atomLength++;
    } else {
      return false;
    }
  }
  return atomLength > 0;
}

// RFC 5321 §4.1.2 Quoted-string: qtextSMTP is %d32-33 / %d35-91 / %d93-126, quoted-pairSMTP is
// "\" followed by %d32-126.
function isQuotedString(text: string, utf8: boolean): boolean {
  if (text.length < 2 || !text.endsWith('"')) return false;
  for (let i = 1; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) {
      const next = text.charCodeAt(++i);
      if (i >= text.length - 1 || next < 32 || next > 126) return false;
    } else if (c === 0x22 || c < 32 || c === 127 || (c > 127 && !utf8)) {
      return false;
    }
  }
  return true;
}

/**
 * Whether `bytes` from `start` to `end` are `local-part@domain` in the plain shape: a dot-atom
 * local part of at most 64 characters and a domain of ASCII labels, as {@link parseMailbox} would
 * take them with or without SMTPUTF8. Read from the bytes in one pass: a string's characters cost
 * V8's optimized code about twice what a Buffer's bytes do (bench/README.md). `false` says only
 * that the mailbox is not plain; the general parser decides it.
 */
export function isPlainMailboxIn(bytes: Buffer, start: number, end: number): boolean {
  let at = start;
  let atomLength = 0;
  for (; at < end; at++) {
    const c = bytes[at] ?? 0;
    if (c === 0x40) break;
    if (c === 0x2e) {
      if (atomLength === 0) return false;
      atomLength = 0;
    } else if (c < 0x80 && ATEXT_CHAR[c] === 1) {
      atomLength++;
    } else {
      return false;
    }
  }
  if (atomLength === 0 || at - start > MAX_LOCAL_PART) return false;
  let labelLength = 0;
  let last = 0;
  for (let i = at + 1; i < end; i++) {
    const c = bytes[i] ?? 0;
    if (c === 0x2e) {
      if (labelLength === 0 || last === 0x2d) return false;
      labelLength = 0;
    } else if ((c < 0x80 && LET_DIG[c] === 1) || (c === 0x2d && labelLength > 0)) {
      if (++labelLength > 63) return false;
    } else {
      return false;
    }
    last = c;
  }
  return labelLength > 0 && last !== 0x2d;
}

/** Whether `domain` is a dotted domain name (RFC 5321 §4.1.2 `Domain`), U-labels when `utf8`. */
export function isDomain(domain: string, utf8: boolean): boolean {
  if (domain === '') return false;
  if (hasNonAscii(domain)) {
    if (!utf8 || Buffer.byteLength(domain) > MAX_DOMAIN) return false;
    return domain.split('.').every((part) => part.length <= 63 && LABEL_UTF8.test(part));
  }
  return domain.length <= MAX_DOMAIN && isAsciiDomain(domain, 0, domain.length);
}

/** Labels of letters, digits and inner hyphens, 1 to 63 long, joined by single dots: `domain` from `start` to `end`. */
function isAsciiDomain(domain: string, start: number, end: number): boolean {
  let labelLength = 0;
  let last = 0;
  for (let i = start; i < end; i++) {
    const c = domain.charCodeAt(i);
    if (c === 0x2e) {
      if (labelLength === 0 || last === 0x2d) return false;
      labelLength = 0;
    } else if (LET_DIG[c] === 1 || (c === 0x2d && labelLength > 0)) {
      if (++labelLength > 63) return false;
    } else {
      return false;
    }
    last = c;
  }
  return labelLength > 0 && last !== 0x2d;
}

/** Whether `text` is an IPv4 address in dotted decimal. */
export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** Whether `text` is an IPv4 address in dotted decimal, or an IPv6 address. */
export function isIpAddress(text: string): boolean {
  return IPV4.test(text) || isIPv6(text);
}

/** Whether `text` is `[IPv4]`, `[IPv6:…]` or a general address literal (RFC 5321 §4.1.3). */
export function isAddressLiteral(text: string): boolean {
  if (!text.startsWith('[') || !text.endsWith(']')) return false;
  const inner = text.slice(1, -1);
  if (IPV4.test(inner)) return true;
  const colon = inner.indexOf(':');
  if (colon <= 0) return false;
  const tag = inner.slice(0, colon);
  const value = inner.slice(colon + 1);
  if (tag.toUpperCase() === 'IPV6') return isIPv6(value);
  // General-address-literal: Standardized-tag ":" 1*dcontent (%d33-90 / %d94-126)
  return /^[A-Za-z0-9-]*[A-Za-z0-9]$/.test(tag) && /^[\x21-\x5a\x5e-\x7e]+$/.test(value);
}

/** Whether `text` is an IPv6 address in any of RFC 4291's text forms (no zone). */
export function isIPv6(text: string): boolean {
  const v4 = text.lastIndexOf(':');
  let groups = text;
  let extra = 0;
  if (v4 !== -1 && text.slice(v4 + 1).includes('.')) {
    if (!IPV4.test(text.slice(v4 + 1))) return false;
    groups = text.slice(0, v4 + 1) + '0';
    extra = 1;
  }
  const halves = groups.split('::');
  if (halves.length > 2) return false;
  const parse = (h: string): string[] | null => {
    if (h === '') return [];
    const parts = h.split(':');
    return parts.every((p) => /^[0-9A-Fa-f]{1,4}$/.test(p)) ? parts : null;
  };
  const left = parse(halves[0] ?? '');
  const right = halves.length === 2 ? parse(halves[1] ?? '') : [];
  if (left === null || right === null) return false;
  const count = left.length + right.length + extra;
  return halves.length === 2 ? count <= 7 : count === 8;
}
