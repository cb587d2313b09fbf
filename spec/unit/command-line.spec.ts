import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseLine, plainCommand, plainMailOrRcpt } from '../../lib/protocol/command-line.js';
import { decodeLine, parseCommand, type ParseContext, type ParseResult } from '../../lib/protocol/command.js';

const CONTEXTS: readonly ParseContext[] = [
  { esmtp: true, smtputf8Offered: true, smtputf8Transaction: false, authOffered: false },
  { esmtp: false, smtputf8Offered: false, smtputf8Transaction: false, authOffered: false, strict: true },
  { esmtp: true, smtputf8Offered: true, smtputf8Transaction: true, authOffered: true, chunking: true, dsn: true, tls: true },
];

/** What the general parser makes of `line`: decoded, then parsed. */
function general(line: string, ctx: ParseContext): ParseResult {
  const text = decodeLine(Buffer.from(line, 'latin1'));
  return typeof text === 'string' ? parseCommand(text, ctx) : text;
}

/** `line` in the middle of other bytes, as a lent read holds it: the parser must not look past its ends. */
function within(line: string, before: string, after: string): [Buffer, number, number] {
  return [Buffer.from(before + line + after, 'latin1'), before.length, before.length + line.length];
}

function plain(line: string): ParseResult | undefined {
  const [bytes, start, end] = within(line, '', '');
  return plainCommand(bytes, start, end);
}

describe('the plain MAIL and RCPT read from bytes', () => {
  it('gives the command the general parser gives, the address cut from the bytes', () => {
    for (const ctx of CONTEXTS) {
      for (const line of ['MAIL FROM:<bench@sender.test>', 'RCPT TO:<sink@bench.test>', "RCPT TO:<o'neil+tag.x@a-b.c9.example>"]) {
        const [bytes, start, end] = within(line, 'EHLO x\r\n', '\r\nDATA\r\n');
        expect(parseLine(bytes, start, end, ctx)).toEqual(general(line, ctx));
        expect(plain(line)).toBeDefined();
      }
    }
    expect(plain('MAIL FROM:<bench@sender.test>')).toEqual({
      verb: 'MAIL',
      address: 'bench@sender.test',
      params: {},
      size: undefined,
      body: '7BIT',
      smtputf8: false,
      requireTls: false,
      dsn: undefined,
    });
    expect(plain('RCPT TO:<sink@bench.test>')).toEqual({ verb: 'RCPT', address: 'sink@bench.test', params: {}, dsn: undefined });
  });

  it('takes DATA, RSET, NOOP and QUIT in upper case as the very objects the general parser returns', () => {
    for (const verb of ['DATA', 'RSET', 'NOOP', 'QUIT']) {
      expect(plain(verb)).toBe(parseCommand(verb, CONTEXTS[0]!));
    }
    for (const other of ['data', 'HELP', 'EXPN', 'DAT\u00c1', 'VRFY']) expect(plain(other)).toBeUndefined();
  });

  it('leaves every other shape to the general parser', () => {
    const local64 = 'a'.repeat(64);
    expect(plain(`MAIL FROM:<${local64}@b.example>`)).toBeDefined();
    expect(plain(`MAIL FROM:<${'l'.repeat(63)}@${'d'.repeat(63)}.example>`)).toBeDefined();
    // A path of 256 characters between the brackets is the longest (RFC 5321 §4.5.3.1).
    const domain193 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.x`;
    expect(plain(`MAIL FROM:<${'l'.repeat(62)}@${domain193}>`)).toBeDefined();
    for (const line of [
      'mail FROM:<a@b.example>',
      'MAIL from:<a@b.example>',
      'MAIL FROM: <a@b.example>',
      'MAIL  FROM:<a@b.example>',
      'MAIL FROM:<a@b.example> SIZE=10',
      'MAIL FROM:<a@b.example> ',
      'MAIL FROM:<>',
      'RCPT TO:<Postmaster>',
      'RCPT TO:<"a b"@c.example>',
      'RCPT TO:<@relay.example:a@b.example>',
      'RCPT TO:<a@[192.0.2.1]>',
      'RCPT TO:<ü@b.example>',
      'RCPT TO:<a@bü.example>',
      `MAIL FROM:<a${local64}@b.example>`,
      `MAIL FROM:<a@${'d'.repeat(64)}.example>`,
      `MAIL FROM:<a@${'d.'.repeat(127)}de>`,
      'MAIL FROM:<a@-b.example>',
      'MAIL FROM:<a@b-.example>',
      'MAIL FROM:<a@b..example>',
      'MAIL FROM:<a@b.example.>',
      'MAIL FROM:<a@b.example->',
      `MAIL FROM:<${'l'.repeat(63)}@${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.x>`,
      'MAIL FROM:<.a@b.example>',
      'MAIL FROM:<a.@b.example>',
      'MAIL FROM:<a..b@c.example>',
      'MAIL FROM:<a@b@c.example>',
      'MAIL FROM:<@b.example>',
      'MAIL FROM:<a@>',
      'MAIL FROM:<a>',
      'MAIL FROM:<a@b.example',
      'MAIL FROM:a@b.example>',
      'MAIL FROM:<a@b.example>>',
      'MAIL FROM:<a\tb@c.example>',
      'MAIL FROM:<',
      'MAIL FROM:',
      'RCPT TO:',
      '',
    ]) {
      expect(plain(line), line).toBeUndefined();
      for (const ctx of CONTEXTS) {
        const [bytes, start, end] = within(line, 'x', '>\r\n');
        expect(parseLine(bytes, start, end, ctx), line).toEqual(general(line, ctx));
      }
    }
  });

  it('does not read past the line: a closing bracket or more address after its end is not part of it', () => {
    const [bytes, start, end] = within('MAIL FROM:<a@b.example', 'RSET\r\n', '>\r\n');
    expect(plainMailOrRcpt(bytes, start, end)).toBeUndefined();
    const [cut, s, e] = within('DAT', '', 'A\r\n');
    expect(parseLine(cut, s, e, CONTEXTS[0]!)).toEqual(general('DAT', CONTEXTS[0]!));
  });

  it('property: whatever the line, in any context, the result is the general parser’s', () => {
    const piece = fc.constantFrom(
      'MAIL FROM:<',
      'RCPT TO:<',
      'MAIL FROM: <',
      'mail from:<',
      'DATA',
      'QUIT',
      'a',
      'Z9',
      "o'n+x",
      '.',
      '..',
      '@',
      '-',
      'example',
      'b-c',
      '>',
      '<',
      ' ',
      ' SIZE=10',
      ' SMTPUTF8',
      '"q"',
      '[192.0.2.1]',
      'ü',
      '\u00e9',
      '\t',
      'Postmaster',
      'x'.repeat(63),
      'y'.repeat(70),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), (parts, before, after) => {
        const line = parts.join('');
        // latin1 keeps one byte of each character around the line: any byte may lie there.
        const [bytes, start, end] = within(line, before, after);
        for (const ctx of CONTEXTS) expect(parseLine(bytes, start, end, ctx)).toEqual(general(line, ctx));
      }),
      { numRuns: 3000 },
    );
  });

  it('property: every plain address of random atoms and labels takes the short path and means the same', () => {
    const atom = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}$/);
    const label = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?$/);
    fc.assert(
      fc.property(fc.array(atom, { minLength: 1, maxLength: 4 }), fc.array(label, { minLength: 1, maxLength: 4 }), (local, domain) => {
        for (const line of [`MAIL FROM:<${local.join('.')}@${domain.join('.')}>`, `RCPT TO:<${local.join('.')}@${domain.join('.')}>`]) {
          expect(plain(line)).toBeDefined();
          for (const ctx of CONTEXTS) expect(plain(line)).toEqual(general(line, ctx));
        }
      }),
    );
  });
});
