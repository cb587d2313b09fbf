/**
 * Command-line parsing (RFC 5321 §4.1.1): a line's bytes in, a typed command or an error reply
 * out. Pure. Command order is not decided here but in `session.ts`.
 */
import { latin1 } from './byte-index.js';
import { hasNonAscii, isDomain, parsePathIn } from './address.js';
import { parseEnvid, parseNotify, parseOrcpt, parseRet, type MailDsn, type RcptDsn } from './dsn.js';
import type { Reply } from './reply.js';
import { REPLIES } from './replies.js';

/**
 * ESMTP parameters of MAIL or RCPT, keyword upper-cased; `true` for a keyword without value.
 *
 * @example
 * ```ts
 * override rcpt(address: string, params: EsmtpParams) { if ('NOTIFY' in params) this.log.info('DSN asked'); }
 * ```
 */
export type EsmtpParams = Readonly<Record<string, string | true>>;

/**
 * The body type declared with `BODY=` (RFC 6152; BINARYMIME from RFC 3030, sent with BDAT only).
 *
 * @example
 * ```ts
 * const eightBit = this.request.envelope.bodyType === '8BITMIME'; // the body may hold 8-bit bytes
 * ```
 */
export type BodyType = '7BIT' | '8BITMIME' | 'BINARYMIME';

export type Command =
  | { readonly verb: 'HELO' | 'EHLO' | 'LHLO'; readonly domain: string }
  | {
      readonly verb: 'MAIL';
      readonly address: string;
      readonly params: EsmtpParams;
      readonly size: number | undefined;
      readonly body: BodyType;
      readonly smtputf8: boolean;
      /** REQUIRETLS (RFC 8689): the message must travel over verified TLS only. */
      readonly requireTls: boolean;
      /** RET and ENVID (RFC 3461), when DSN is offered and either was given. */
      readonly dsn: MailDsn | undefined;
    }
  | { readonly verb: 'RCPT'; readonly address: string; readonly params: EsmtpParams; readonly dsn: RcptDsn | undefined }
  | { readonly verb: 'BDAT'; readonly size: number; readonly last: boolean }
  | { readonly verb: 'XCLIENT' | 'XFORWARD'; readonly words: readonly string[] }
  | { readonly verb: 'DATA' | 'RSET' | 'QUIT' | 'NOOP' | 'HELP' | 'EXPN' | 'STARTTLS' }
  | { readonly verb: 'AUTH'; readonly mechanism: string; readonly initialResponse: string | undefined }
  | { readonly verb: 'VRFY'; readonly argument: string }
  | { readonly verb: 'HTTP' };

export type Verb = Command['verb'];

/** What the parser needs to know of the session. */
export interface ParseContext {
  /** Whether the client greeted with EHLO (ESMTP parameters are only valid then). */
  readonly esmtp: boolean;
  /** Whether SMTPUTF8 is offered by the server. */
  readonly smtputf8Offered: boolean;
  /** Whether the current transaction's MAIL carried SMTPUTF8 (for RCPT). */
  readonly smtputf8Transaction: boolean;
  /** Whether AUTH is offered (MAIL then takes the AUTH= parameter, RFC 4954 §5). */
  readonly authOffered: boolean;
  /** RFC 5321's grammar to the letter: no space between `FROM:`/`TO:` and the path. */
  readonly strict?: boolean;
  /** Whether CHUNKING/BINARYMIME are offered (MAIL then takes BODY=BINARYMIME). */
  readonly chunking?: boolean;
  /** Whether DSN is offered (MAIL takes RET and ENVID, RCPT takes NOTIFY and ORCPT). */
  readonly dsn?: boolean;
  /** Whether TLS is up (REQUIRETLS is offered only then). */
  readonly tls?: boolean;
}

/** The largest BDAT chunk size parsed: 15 digits, far past any message and exact as a number. */
const BDAT_SIZE = /^\d{1,15}$/;

export type ParseResult = Command | { readonly error: Reply };

const DECODER = new TextDecoder('utf-8', { fatal: true });
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
// RFC 5321 §4.1.2 esmtp-value: %d33-60 / %d62-126; RFC 6531 §3.3 adds UTF-8 under SMTPUTF8.
const VALUE = /^[\x21-\x3c\x3e-\x7e]+$/;
const VALUE_UTF8 = /^[\x21-\x3c\x3e-\x7e\u0080-\u{10FFFF}]+$/u;
const HTTP_VERBS = new Set(['GET', 'POST', 'PUT', 'HEAD', 'CONNECT', 'OPTIONS', 'DELETE', 'PATCH']);

/**
 * Upper-cases the ASCII letters only: verbs and keywords are case-insensitive in ASCII alone
 * (RFC 5321 §2.4), so no Unicode case mapping may turn a foreign letter into one of theirs.
 * Text already in upper case, the common case, is returned as it is.
 */
function asciiUpper(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return text.replace(/[a-z]+/g, (m) => m.toUpperCase());
  }
  return text;
}

/** Decodes one command line (without its line end), `line` from `start` to `end`, and checks its characters. */
export function decodeLine(line: Buffer, start = 0, end = line.length): string | { readonly error: Reply } {
  // The common line is printable ASCII: one pass decides, and latin1 decodes it as it is.
  let control = false;
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = line[i] ?? 0;
    if (b > 0x7f) {
      ascii = false;
      break;
    }
    if (b < 0x20 || b === 0x7f) control = true;
  }
  if (ascii) return control ? { error: REPLIES.controlCharacters() } : latin1(line, start, end);
  let text: string;
  try {
    text = DECODER.decode(line.subarray(start, end));
  } catch {
    return { error: REPLIES.invalidUtf8() };
  }
  if (CONTROL.test(text)) return { error: REPLIES.controlCharacters() };
  return text;
}

type BareVerb = 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS' | 'NOOP' | 'HELP' | 'EXPN';
/**
 * The commands without an argument, one frozen object each: none is made per line, and the verb
 * is the constant string (the line's own copy would be looked up in V8's string table wherever
 * it is used as a key).
 */
export const BARE: Readonly<Record<BareVerb, Command>> = Object.freeze({
  DATA: Object.freeze({ verb: 'DATA' }),
  RSET: Object.freeze({ verb: 'RSET' }),
  QUIT: Object.freeze({ verb: 'QUIT' }),
  STARTTLS: Object.freeze({ verb: 'STARTTLS' }),
  NOOP: Object.freeze({ verb: 'NOOP' }),
  HELP: Object.freeze({ verb: 'HELP' }),
  EXPN: Object.freeze({ verb: 'EXPN' }),
});

/** A command that takes no argument: refused when it has one. */
function bare(command: Command, arg: string): ParseResult {
  return arg.trim() === '' ? command : { error: REPLIES.syntax(command.verb) };
}

/** Parses one decoded command line. */
export function parseCommand(text: string, ctx: ParseContext): ParseResult {
  const space = text.indexOf(' ');
  const verb = asciiUpper(space === -1 ? text : text.slice(0, space));
  // MAIL and RCPT read their argument in place, within the line (see parsePathIn).
  const from = space === -1 ? text.length : space + 1;
  // The verbs of every message first: each case compares the line's own copy of the verb.
  switch (verb) {
    case 'MAIL':
      return parseMail(text, from, ctx);
    case 'RCPT':
      return parseRcpt(text, from, ctx);
  }
  const arg = space === -1 ? '' : text.slice(space + 1);
  switch (verb) {
    case 'DATA':
      return bare(BARE.DATA, arg);
    case 'HELO':
      return parseHello('HELO', arg.trim(), ctx);
    case 'EHLO':
      return parseHello('EHLO', arg.trim(), ctx);
    case 'LHLO':
      return parseHello('LHLO', arg.trim(), ctx);
    case 'BDAT':
      return parseBdat(arg);
    case 'XCLIENT': // Postfix's XCLIENT_README and XFORWARD_README: attribute=value words
    case 'XFORWARD':
      return { verb, words: arg.split(' ').filter((w) => w !== '') };
    case 'RSET':
      return bare(BARE.RSET, arg);
    case 'QUIT':
      return bare(BARE.QUIT, arg);
    case 'STARTTLS':
      return bare(BARE.STARTTLS, arg);
    case 'NOOP': // RFC 5321 §4.1.1.9: a parameter is allowed and ignored
      return BARE.NOOP;
    case 'HELP': // §4.1.1.8: the argument may be ignored
      return BARE.HELP;
    case 'EXPN':
      return BARE.EXPN;
    case 'AUTH': {
      // RFC 4954 §4: AUTH mechanism [initial-response], "=" standing for an empty response.
      const words = arg.split(' ');
      const mechanism = asciiUpper(words[0] ?? '');
      if (mechanism === '' || words.length > 2 || !/^[A-Z0-9_-]{1,20}$/.test(mechanism)) {
        return { error: REPLIES.syntax('AUTH mechanism [initial-response]') };
      }
      return { verb, mechanism, initialResponse: words[1] };
    }
    case 'VRFY':
      return arg.trim() === '' ? { error: REPLIES.syntax('VRFY <address>') } : { verb, argument: arg.trim() };
    default:
      if (HTTP_VERBS.has(verb) || /^[A-Za-z-]+:$/.test(verb)) return { verb: 'HTTP' };
      return { error: REPLIES.unrecognized() };
  }
}

function parseHello(verb: 'HELO' | 'EHLO' | 'LHLO', domain: string, ctx: ParseContext): ParseResult {
  if (domain === '') return { error: REPLIES.syntax(`${verb} hostname`) };
  // RFC 5321 §4.1.4 allows a domain or an address literal. Clients often send bare names or
  // IPs, so anything without spaces is taken: the name is logged, not trusted.
  if (/\s/.test(domain)) return { error: REPLIES.syntax(`${verb} hostname`) };
  if (hasNonAscii(domain) && !(ctx.smtputf8Offered && isDomain(domain, true))) {
    return { error: REPLIES.syntax(`${verb} hostname`) };
  }
  return { verb, domain };
}

/** RFC 3030 §2: `BDAT chunk-size [LAST]`. A size that is not 1 to 15 digits is a syntax error. */
function parseBdat(arg: string): ParseResult {
  const words = arg.split(' ');
  const size = words[0] ?? '';
  const last = words.length === 2 && asciiUpper(words[1] ?? '') === 'LAST';
  if (!BDAT_SIZE.test(size) || words.length > 2 || (words.length === 2 && !last)) {
    return { error: REPLIES.syntax('BDAT chunk-size [LAST], chunk-size at most 15 digits') };
  }
  return { verb: 'BDAT', size: Number(size), last };
}

/** No parameters: one shared, frozen record (most MAIL and RCPT commands carry none). */
export const NO_PARAMS: EsmtpParams = Object.freeze({});
const NO_WORDS: readonly string[] = Object.freeze([]);

/** Whether `text` has `keyword` (upper-case ASCII) at `from`, ASCII letters compared without case. */
function hasKeywordAt(text: string, from: number, keyword: string): boolean {
  if (text.length - from < keyword.length) return false;
  for (let i = 0; i < keyword.length; i++) {
    const c = text.charCodeAt(from + i);
    if ((c >= 0x61 && c <= 0x7a ? c - 0x20 : c) !== keyword.charCodeAt(i)) return false;
  }
  return true;
}

/** `FROM:<path> PARAMS` in `text` from `from` on: where the path is (with its brackets), and the parameter words. */
interface PathArgument {
  readonly start: number;
  readonly end: number;
  readonly words: readonly string[];
}

/** Splits `FROM:<path> PARAMS` (in `text` from `from` on) into the path and the parameter words. */
function splitPathArgument(text: string, from: number, keyword: 'FROM:' | 'TO:', strict: boolean): PathArgument | null {
  if (!hasKeywordAt(text, from, keyword)) return null;
  // Many clients write `MAIL FROM: <a@b>`: one space after the colon is tolerated unless strict.
  let start = from + keyword.length;
  if (!strict && text.charCodeAt(start) === 0x20) start++;
  if (text.charCodeAt(start) !== 0x3c) return null;
  // The path ends at the first `>` outside a quoted local part.
  let quoted = false;
  let end = -1;
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c && quoted) i++;
    else if (c === 0x22) quoted = !quoted;
    else if (c === 0x3e && !quoted) {
      end = i + 1;
      break;
    }
  }
  if (end === -1) return null;
  if (end === text.length) return { start, end, words: NO_WORDS };
  if (text.charCodeAt(end) !== 0x20) return null;
  return {
    start,
    end,
    words: text
      .slice(end)
      .split(' ')
      .filter((w) => w !== ''),
  };
}

/** A refused parameter: the parse result as it is returned. */
class ParamsRefused {
  constructor(readonly error: Reply) {}
}

function parseParams(words: readonly string[], ctx: ParseContext, utf8Values: boolean): EsmtpParams | ParamsRefused {
  if (words.length === 0) return NO_PARAMS;
  const params: Record<string, string | true> = {};
  for (const word of words) {
    if (!ctx.esmtp) return new ParamsRefused(REPLIES.unknownParameter(word.split('=')[0] ?? word));
    const eq = word.indexOf('=');
    const key = asciiUpper(eq === -1 ? word : word.slice(0, eq));
    if (!KEYWORD.test(key)) return new ParamsRefused(REPLIES.badParameter(`Bad parameter syntax: ${word}`));
    if (Object.hasOwn(params, key)) return new ParamsRefused(REPLIES.badParameter(`Duplicate parameter: ${key}`));
    if (eq === -1) {
      params[key] = true;
    } else {
      const value = word.slice(eq + 1);
      if (!(utf8Values ? VALUE_UTF8 : VALUE).test(value)) return new ParamsRefused(REPLIES.badParameter(`Bad value for ${key}`));
      params[key] = value;
    }
  }
  return params;
}

/** parsePath's options for each side, and with SMTPUTF8. */
const SENDER_PATH = { allowNull: true, allowPostmaster: false, utf8: false } as const;
const SENDER_PATH_UTF8 = { allowNull: true, allowPostmaster: false, utf8: true } as const;
const RECIPIENT_PATH = { allowNull: false, allowPostmaster: true, utf8: false } as const;
const RECIPIENT_PATH_UTF8 = { allowNull: false, allowPostmaster: true, utf8: true } as const;

function parseMail(text: string, from: number, ctx: ParseContext): ParseResult {
  const split = splitPathArgument(text, from, 'FROM:', ctx.strict === true);
  if (split === null) return { error: REPLIES.syntax('MAIL FROM:<address> [parameters]') };
  const smtputf8 = ctx.esmtp && ctx.smtputf8Offered && split.words.some((w) => asciiUpper(w) === 'SMTPUTF8');
  const params = parseParams(split.words, ctx, smtputf8);
  if (params instanceof ParamsRefused) return params;
  let size: number | undefined;
  let body: BodyType = '7BIT';
  let requireTls = false;
  let ret: MailDsn['ret'];
  let envid: string | undefined;
  for (const key in params) {
    const value = params[key] ?? true;
    switch (key) {
      case 'SIZE': // RFC 1870 §3: SIZE=1*20DIGIT
        if (value === true || !/^\d{1,20}$/.test(value)) return { error: REPLIES.badParameter('SIZE requires a number') };
        size = Number(value);
        break;
      case 'BODY': // RFC 6152 §3
        if (value === true) return { error: REPLIES.badParameter('BODY requires a value') };
        if (asciiUpper(value) === '7BIT') body = '7BIT';
        else if (asciiUpper(value) === '8BITMIME') body = '8BITMIME';
        else if (asciiUpper(value) === 'BINARYMIME' && ctx.chunking === true) body = 'BINARYMIME';
        else return { error: REPLIES.badParameter(`BODY=${value} not supported`) };
        break;
      case 'REQUIRETLS': // RFC 8689 §4: no value, offered under TLS only
        if (ctx.tls !== true) return { error: REPLIES.requireTlsWithoutTls() };
        if (value !== true) return { error: REPLIES.badParameter('REQUIRETLS takes no value') };
        requireTls = true;
        break;
      case 'RET': {
        if (ctx.dsn !== true) return { error: REPLIES.unknownParameter(key) };
        const parsed = parseRet(value);
        if (typeof parsed === 'object') return { error: REPLIES.badParameter(parsed.error) };
        ret = parsed;
        break;
      }
      case 'ENVID': {
        if (ctx.dsn !== true) return { error: REPLIES.unknownParameter(key) };
        const parsed = parseEnvid(value);
        if (typeof parsed === 'object') return { error: REPLIES.badParameter(parsed.error) };
        envid = parsed;
        break;
      }
      case 'AUTH': // RFC 4954 §5: accepted and not trusted; the value is kept in params
        if (!ctx.authOffered) return { error: REPLIES.unknownParameter(key) };
        break;
      case 'SMTPUTF8': // RFC 6531 §3.4: no value
        if (!ctx.smtputf8Offered) return { error: REPLIES.unknownParameter(key) };
        if (value !== true) return { error: REPLIES.badParameter('SMTPUTF8 takes no value') };
        break;
      default:
        return { error: REPLIES.unknownParameter(key) };
    }
  }
  if (hasNonAscii(text, split.start, split.end) && !smtputf8) return { error: REPLIES.nonAsciiAddress() };
  const path = parsePathIn(text, split.start, split.end, smtputf8 ? SENDER_PATH_UTF8 : SENDER_PATH);
  if ('error' in path) return { error: REPLIES.badSenderSyntax(path.error) };
  const dsn = ret === undefined && envid === undefined ? undefined : { ret, envid };
  return { verb: 'MAIL', address: path.address, params, size, body, smtputf8, requireTls, dsn };
}

function parseRcpt(text: string, from: number, ctx: ParseContext): ParseResult {
  const split = splitPathArgument(text, from, 'TO:', ctx.strict === true);
  if (split === null) return { error: REPLIES.syntax('RCPT TO:<address> [parameters]') };
  const params = parseParams(split.words, ctx, ctx.smtputf8Transaction);
  if (params instanceof ParamsRefused) return params;
  // RFC 5321 §4.1.1.11: a parameter not offered is unknown. NOTIFY and ORCPT come with DSN.
  let notify: RcptDsn['notify'];
  let orcpt: RcptDsn['orcpt'];
  for (const key in params) {
    const value = params[key] ?? true;
    if (ctx.dsn !== true || (key !== 'NOTIFY' && key !== 'ORCPT')) return { error: REPLIES.unknownParameter(key) };
    const parsed = key === 'NOTIFY' ? parseNotify(value) : parseOrcpt(value);
    if (parsed !== undefined && typeof parsed === 'object' && 'error' in parsed) return { error: REPLIES.badParameter(parsed.error) };
    if (key === 'NOTIFY') notify = parsed as RcptDsn['notify'];
    else orcpt = parsed as RcptDsn['orcpt'];
  }
  if (hasNonAscii(text, split.start, split.end) && !ctx.smtputf8Transaction) return { error: REPLIES.nonAsciiAddress() };
  const path = parsePathIn(text, split.start, split.end, ctx.smtputf8Transaction ? RECIPIENT_PATH_UTF8 : RECIPIENT_PATH);
  if ('error' in path) return { error: REPLIES.badRecipientSyntax(path.error) };
  const dsn = notify === undefined && orcpt === undefined ? undefined : { notify, orcpt };
  return { verb: 'RCPT', address: path.address, params, dsn };
}
