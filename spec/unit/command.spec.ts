import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLine, parseCommand, type ParseContext } from '../../lib/protocol/command.js';
import { REPLIES } from '../../lib/protocol/replies.js';
import { formatReply } from '../../lib/protocol/reply.js';
import { isAddressLiteral, parsePath } from '../../lib/protocol/address.js';

const ESMTP: ParseContext = { esmtp: true, smtputf8Offered: true, smtputf8Transaction: false, authOffered: false };
const HELO: ParseContext = { ...ESMTP, esmtp: false };

function replyOf(text: string, ctx = ESMTP): string {
  const result = parseCommand(text, ctx);
  return 'error' in result ? formatReply(result.error) : 'ok';
}

describe('parseCommand', () => {
  it('takes verbs in any case', () => {
    expect(parseCommand('ehlo client.example', ESMTP)).toEqual({ verb: 'EHLO', domain: 'client.example' });
    expect(parseCommand('QuIt', ESMTP)).toEqual({ verb: 'QUIT' });
  });

  it('folds case in ASCII only: no Unicode mapping turns a foreign letter into a verb', () => {
    // 'ı' (dotless i) and 'ſ' (long s) upper-case to I and S under Unicode rules.
    expect(replyOf('MAıL FROM:<a@b.example>')).toBe('500 5.5.2 Command not recognized\r\n');
    expect(replyOf('maıl FROM:<a@b.example>')).toBe('500 5.5.2 Command not recognized\r\n');
    expect(replyOf('MAIL FROM:<a@b.example> ſMTPUTF8')).toBe('501 5.5.4 Bad parameter syntax: ſMTPUTF8\r\n');
    expect(parseCommand('mail from:<a@b.example> body=8bitmime', ESMTP)).toMatchObject({ verb: 'MAIL', body: '8BITMIME' });
  });

  it('parses BDAT sizes as bounded integers and LAST in any case', () => {
    expect(parseCommand('BDAT 0 LAST', ESMTP)).toEqual({ verb: 'BDAT', size: 0, last: true });
    expect(parseCommand('bdat 999999999999999 last', ESMTP)).toEqual({ verb: 'BDAT', size: 999999999999999, last: true });
    expect(parseCommand('BDAT 1000', ESMTP)).toEqual({ verb: 'BDAT', size: 1000, last: false });
    for (const bad of ['BDAT 1000000000000000', 'BDAT 1e3', 'BDAT +1', 'BDAT 1 LAST x', 'BDAT 1  LAST', 'BDAT']) {
      expect(parseCommand(bad, ESMTP)).toEqual({ error: REPLIES.syntax('BDAT chunk-size [LAST], chunk-size at most 15 digits') });
    }
  });

  it('keeps ESMTP parameters out of the address', () => {
    expect(parseCommand('MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME', ESMTP)).toEqual({
      verb: 'MAIL',
      address: 'a@b.example',
      params: { SIZE: '10', BODY: '8BITMIME' },
      size: 10,
      body: '8BITMIME',
      smtputf8: false,
      requireTls: false,
      dsn: undefined,
    });
  });

  it('accepts the null reverse-path and one space after the colon', () => {
    expect(parseCommand('MAIL FROM:<>', ESMTP)).toMatchObject({ address: '' });
    expect(parseCommand('MAIL FROM: <a@b.example>', ESMTP)).toMatchObject({ address: 'a@b.example' });
  });

  it('refuses <> as a recipient and takes <Postmaster>', () => {
    expect(replyOf('RCPT TO:<>')).toBe('501 5.1.3 Bad recipient address syntax: null address not allowed here\r\n');
    expect(parseCommand('RCPT TO:<Postmaster>', ESMTP)).toMatchObject({ address: 'Postmaster' });
  });

  it('ignores a source route', () => {
    expect(parseCommand('RCPT TO:<@relay.example,@b.example:user@c.example>', ESMTP)).toMatchObject({ address: 'user@c.example' });
  });

  it('takes quoted local parts and address literals', () => {
    expect(parseCommand('RCPT TO:<"john doe>"@example.com>', ESMTP)).toMatchObject({ address: '"john doe>"@example.com' });
    expect(parseCommand('RCPT TO:<u@[192.0.2.1]>', ESMTP)).toMatchObject({ address: 'u@[192.0.2.1]' });
    expect(parseCommand('RCPT TO:<u@[IPv6:2001:db8::1]>', ESMTP)).toMatchObject({ address: 'u@[IPv6:2001:db8::1]' });
  });

  it.each([
    ['MAIL FROM:a@b.example', '501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n'],
    ['MAIL TO:<a@b.example>', '501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n'],
    ['MAIL FROM:<a@b.example>x', '501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n'],
    ['MAIL FROM:<a@@b>', '501 5.1.7 Bad sender address syntax: bad local part\r\n'],
    ['MAIL FROM:<a@b..c>', '501 5.1.7 Bad sender address syntax: bad domain\r\n'],
    ['MAIL FROM:<ab>', '501 5.1.7 Bad sender address syntax: address must be local-part@domain\r\n'],
    ['MAIL FROM:<a@b.example> SIZE=ten', '501 5.5.4 SIZE requires a number\r\n'],
    ['MAIL FROM:<a@b.example> BODY=BINARYMIME', '501 5.5.4 BODY=BINARYMIME not supported\r\n'],
    ['MAIL FROM:<a@b.example> FOO=1', '555 5.5.4 FOO parameter not recognized\r\n'],
    ['MAIL FROM:<a@b.example> SIZE=1 SIZE=2', '501 5.5.4 Duplicate parameter: SIZE\r\n'],
    ['RCPT TO:<a@b.example> NOTIFY=NEVER', '555 5.5.4 NOTIFY parameter not recognized\r\n'],
    ['MAIL FROM:<jörg@b.example>', '553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n'],
    ['RCPT TO:<jörg@b.example>', '553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n'],
    ['EHLO', '501 5.5.4 Syntax: EHLO hostname\r\n'],
    ['HELO a b', '501 5.5.4 Syntax: HELO hostname\r\n'],
    ['DATA x', '501 5.5.4 Syntax: DATA\r\n'],
    ['VRFY', '501 5.5.4 Syntax: VRFY <address>\r\n'],
  ])('%s → %s', (line, expected) => {
    expect(replyOf(line)).toBe(expected);
  });

  it('refuses parameters after HELO (no extensions were offered)', () => {
    expect(replyOf('MAIL FROM:<a@b.example> SIZE=10', HELO)).toBe('555 5.5.4 SIZE parameter not recognized\r\n');
  });

  it('takes UTF-8 addresses with SMTPUTF8', () => {
    expect(parseCommand('MAIL FROM:<jörg@bücher.example> SMTPUTF8', ESMTP)).toMatchObject({
      address: 'jörg@bücher.example',
      smtputf8: true,
    });
    expect(parseCommand('RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>', { ...ESMTP, smtputf8Transaction: true })).toMatchObject({
      address: 'δοκιμή@παράδειγμα.δοκιμή',
    });
  });

  it('refuses SMTPUTF8 when it is not offered', () => {
    expect(replyOf('MAIL FROM:<a@b.example> SMTPUTF8', { ...ESMTP, smtputf8Offered: false })).toBe(
      '555 5.5.4 SMTPUTF8 parameter not recognized\r\n',
    );
  });

  it('recognizes HTTP requests', () => {
    expect(parseCommand('GET / HTTP/1.1', ESMTP)).toEqual({ verb: 'HTTP' });
    expect(parseCommand('Host: example.com', ESMTP)).toEqual({ verb: 'HTTP' });
  });

  it('property: never throws, whatever the line', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        const result = parseCommand(text, ESMTP);
        expect(result).toBeTypeOf('object');
      }),
      { numRuns: 2000 },
    );
  });

  it('property: a valid address round-trips through MAIL and RCPT', () => {
    const atom = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}$/);
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
    fc.assert(
      fc.property(fc.array(atom, { minLength: 1, maxLength: 3 }), fc.array(label, { minLength: 1, maxLength: 3 }), (local, domain) => {
        const address = `${local.join('.')}@${domain.join('.')}`;
        expect(parseCommand(`MAIL FROM:<${address}>`, ESMTP)).toMatchObject({ address });
        expect(parseCommand(`RCPT TO:<${address}>`, ESMTP)).toMatchObject({ address });
      }),
    );
  });
});

describe('decodeLine', () => {
  it('refuses invalid UTF-8, NUL and control characters', () => {
    expect(decodeLine(Buffer.from([0x4e, 0xff, 0x4f]))).toEqual({ error: expect.objectContaining({ code: 500 }) as unknown });
    expect(formatReply((decodeLine(Buffer.from('NOOP\0')) as { error: never }).error)).toBe(
      '501 5.5.2 Control characters are not allowed in commands\r\n',
    );
    expect(decodeLine(Buffer.from('RCPT TO:<a\rb@c>'))).toHaveProperty('error');
    expect(decodeLine(Buffer.from('NOOP ünïcode'))).toBe('NOOP ünïcode');
  });
});

describe('addresses', () => {
  it('checks path lengths (RFC 5321 §4.5.3.1)', () => {
    const local = 'a'.repeat(65);
    expect(parsePath(`<${local}@b.example>`, { allowNull: false, allowPostmaster: false, utf8: false })).toEqual({
      error: 'local part too long',
    });
    expect(parsePath(`<a@${'b'.repeat(300)}>`, { allowNull: false, allowPostmaster: false, utf8: false })).toEqual({
      error: 'address too long',
    });
  });

  it('knows address literals', () => {
    expect(isAddressLiteral('[127.0.0.1]')).toBe(true);
    expect(isAddressLiteral('[256.0.0.1]')).toBe(false);
    expect(isAddressLiteral('[IPv6:::1]')).toBe(true);
    expect(isAddressLiteral('[IPv6:::ffff:192.0.2.1]')).toBe(true);
    expect(isAddressLiteral('[IPv6:1:2:3:4:5:6:7:8:9]')).toBe(false);
  });
});
