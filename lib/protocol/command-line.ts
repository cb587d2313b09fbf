/**
 * A command line's bytes to a command. The lines of nearly every transaction, `MAIL
 * FROM:<local@domain>` and `RCPT TO:<local@domain>` with nothing after them, `DATA`, `RSET`,
 * `NOOP` and `QUIT`, are read from the bytes in one pass and give the command the general parser
 * would give; every other line is decoded and parsed in full (`command.ts`). Pure.
 */
import { isPlainMailboxIn, MAX_PATH } from './address.js';
import { latin1 } from './byte-index.js';
import { BARE, decodeLine, NO_PARAMS, parseCommand, type ParseContext, type ParseResult } from './command.js';

const MAIL_FROM = Buffer.from('MAIL FROM:<', 'latin1');
const RCPT_TO = Buffer.from('RCPT TO:<', 'latin1');

/** Parses the command line `bytes` from `start` to `end` (without its line end). */
export function parseLine(bytes: Buffer, start: number, end: number, ctx: ParseContext): ParseResult {
  const plain = plainCommand(bytes, start, end);
  if (plain !== undefined) return plain;
  const text = decodeLine(bytes, start, end);
  return typeof text === 'string' ? parseCommand(text, ctx) : text;
}

/** The command of a plain line ({@link plainVerb}, {@link plainMailOrRcpt}), or `undefined` for any other line. */
export function plainCommand(bytes: Buffer, start: number, end: number): ParseResult | undefined {
  return end - start === 4 ? plainVerb(bytes, start) : plainMailOrRcpt(bytes, start, end);
}

/** `DATA`, `RSET`, `NOOP` or `QUIT` in upper case, the four bytes at `start` read as one number. */
export function plainVerb(bytes: Buffer, start: number): ParseResult | undefined {
  const word =
    (((bytes[start] ?? 0) << 24) | ((bytes[start + 1] ?? 0) << 16) | ((bytes[start + 2] ?? 0) << 8) | (bytes[start + 3] ?? 0)) >>> 0;
  switch (word) {
    case 0x44415441:
      return BARE.DATA;
    case 0x52534554:
      return BARE.RSET;
    case 0x4e4f4f50:
      return BARE.NOOP;
    case 0x51554954:
      return BARE.QUIT;
  }
  return undefined;
}

/**
 * MAIL or RCPT in their plain shape: upper-case verb and keyword, one space, no space after the
 * colon, a path of at most 256 characters holding a plain mailbox ({@link isPlainMailboxIn}),
 * nothing after it. Such a line has no parameters, no null path and no UTF-8, so the session's
 * context cannot change what it means. `undefined` for any other line.
 */
export function plainMailOrRcpt(bytes: Buffer, start: number, end: number): ParseResult | undefined {
  const mail = bytes[start] === 0x4d;
  const prefix = mail ? MAIL_FROM : RCPT_TO;
  if (!startsWith(bytes, start, end, prefix)) return undefined;
  const open = start + prefix.length;
  const close = end - 1;
  if (close - open > MAX_PATH || bytes[close] !== 0x3e || !isPlainMailboxIn(bytes, open, close)) return undefined;
  const address = latin1(bytes, open, close);
  return mail
    ? { verb: 'MAIL', address, params: NO_PARAMS, size: undefined, body: '7BIT', smtputf8: false, requireTls: false, dsn: undefined }
    : { verb: 'RCPT', address, params: NO_PARAMS, dsn: undefined };
}

/** Whether `bytes` from `start` to `end` begin with `prefix`. */
function startsWith(bytes: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[start + i] !== prefix[i]) return false;
  return true;
}
