/** XCLIENT and XFORWARD attributes, and the EHLO reply that offers them: pure functions, exact values. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ehloReply, ehloReplyFor, extensionLines, heloReply } from '../../lib/protocol/extensions.js';
import { formatReply } from '../../lib/protocol/reply.js';
import { clientNamed, forwardedWith, parseAttributes, XCLIENT_ATTRIBUTES, XFORWARD_ATTRIBUTES } from '../../lib/protocol/xclient.js';

const PEER = { id: 'c1', remoteAddress: '10.0.0.9', remotePort: 40000, localAddress: '10.0.0.1', localPort: 25 };

describe('parseAttributes', () => {
  it('reads every XCLIENT attribute, xtext-decoded, IPv6 in Postfix’s form, unavailable as undefined', () => {
    expect(
      parseAttributes(
        [
          'name=mail.example',
          'ADDR=IPV6:2001:db8::7',
          'PORT=4000',
          'PROTO=esmtp',
          'HELO=a+2Bb',
          'LOGIN=[UNAVAILABLE]',
          'DESTADDR=192.0.2.1',
          'DESTPORT=587',
        ],
        XCLIENT_ATTRIBUTES,
      ),
    ).toEqual({
      NAME: 'mail.example',
      ADDR: '2001:db8::7',
      PORT: '4000',
      PROTO: 'esmtp',
      HELO: 'a+b',
      LOGIN: undefined,
      DESTADDR: '192.0.2.1',
      DESTPORT: '587',
    });
  });

  it.each([
    [[], 'at least one attribute is needed'],
    [['ADDR'], 'bad attribute: ADDR'],
    [['=x'], 'bad attribute: =x'],
    [['IDENT=x'], 'bad attribute: IDENT=x'],
    [['ADDR=300.1.1.1'], 'ADDR is not an IP address'],
    [['PORT=65536'], 'PORT is not a port number'],
    [['PORT=-1'], 'PORT is not a port number'],
    [['PROTO=LMTP'], 'PROTO must be SMTP or ESMTP'],
    [['HELO='], 'HELO must be one word'],
    [['HELO=a+20b'], 'HELO must be one word'],
  ])('refuses %j: %s', (words, error) => {
    expect(parseAttributes(words, XCLIENT_ATTRIBUTES)).toEqual({ error });
  });

  it('XFORWARD takes IDENT and SOURCE, not LOGIN', () => {
    expect(parseAttributes(['IDENT=abc', 'SOURCE=remote'], XFORWARD_ATTRIBUTES)).toEqual({ IDENT: 'abc', SOURCE: 'remote' });
    expect(parseAttributes(['SOURCE=nearby'], XFORWARD_ATTRIBUTES)).toEqual({ error: 'SOURCE must be LOCAL or REMOTE' });
    expect(parseAttributes(['LOGIN=u'], XFORWARD_ATTRIBUTES)).toEqual({ error: 'bad attribute: LOGIN=u' });
  });

  it('never throws, and a word either becomes an attribute or the error names the reason (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 30 }), { maxLength: 6 }), (words) => {
        const result = parseAttributes(words, XCLIENT_ATTRIBUTES);
        if ('error' in result) return typeof result.error === 'string' && result.error.length > 0;
        return Object.keys(result).every((name) => (XCLIENT_ATTRIBUTES as readonly string[]).includes(name));
      }),
      { numRuns: 500 },
    );
  });
});

describe('the session’s facts from XCLIENT and XFORWARD', () => {
  it('XCLIENT names the client; an unavailable address is unknown, never the filter’s own', () => {
    expect(clientNamed(PEER, { ADDR: '192.0.2.5', PORT: '1234', HELO: 'client.example', PROTO: 'ESMTP', LOGIN: 'alice' })).toEqual({
      peer: { ...PEER, remoteAddress: '192.0.2.5', remotePort: 1234, clientName: undefined },
      heloName: 'client.example',
      esmtp: true,
      user: 'alice',
    });
    expect(clientNamed(PEER, { ADDR: undefined })).toEqual({
      peer: { ...PEER, remoteAddress: '', remotePort: 0, clientName: undefined },
      heloName: '',
      esmtp: false,
      user: null,
    });
  });

  it('XFORWARD adds to what the transaction’s earlier XFORWARD said', () => {
    const first = forwardedWith(undefined, { NAME: 'a.example', ADDR: '192.0.2.5' });
    expect(forwardedWith(first, { ADDR: undefined, HELO: 'h' })).toEqual({
      name: 'a.example',
      addr: undefined,
      port: undefined,
      proto: undefined,
      helo: 'h',
      ident: undefined,
      source: undefined,
    });
  });
});

describe('the EHLO reply', () => {
  const base = { hostname: 'mx.test', maxMessageSize: 1000, smtputf8: true, starttls: false, auth: [] as string[] };

  it('lists the extensions in their order, each only when offered', () => {
    expect(extensionLines(base)).toEqual(['PIPELINING', 'SIZE 1000', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']);
    expect(
      extensionLines({
        ...base,
        smtputf8: false,
        starttls: true,
        auth: ['PLAIN', 'LOGIN'],
        chunking: true,
        dsn: true,
        requireTls: true,
        xclient: true,
      }),
    ).toEqual([
      'PIPELINING',
      'SIZE 1000',
      '8BITMIME',
      'CHUNKING',
      'BINARYMIME',
      'ENHANCEDSTATUSCODES',
      'DSN',
      'STARTTLS',
      'REQUIRETLS',
      'XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT',
      'XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE',
      'AUTH PLAIN LOGIN',
    ]);
  });

  it('formats as one multi-line 250 without an enhanced code (RFC 2034 §4)', () => {
    expect(formatReply(ehloReply(base, 'client.example'))).toBe(
      '250-mx.test greets client.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n',
    );
    expect(formatReply(heloReply('mx.test'))).toBe('250 mx.test\r\n');
  });

  const offer = { hostname: 'mx.test', maxMessageSize: 1000, smtputf8: true, authMechanisms: ['PLAIN'], chunking: true, dsn: false };

  it('formats the extension lines once per server and set of flags, giving the same reply as built whole', () => {
    for (let flags = 0; flags < 16; flags++) {
      const [starttls, auth, requireTls, xclient] = [1, 2, 4, 8].map((bit) => (flags & bit) !== 0) as [boolean, boolean, boolean, boolean];
      const whole = ehloReply({ ...offer, starttls, auth: auth ? offer.authMechanisms : [], requireTls, xclient }, 'client.example');
      for (const round of [1, 2]) {
        const cached = ehloReplyFor(offer, 'client.example', starttls, auth, requireTls, xclient);
        expect({ round, flags, wire: formatReply(cached), code: cached.code, enhanced: cached.enhanced, lines: cached.lines }).toEqual({
          round,
          flags,
          wire: formatReply(whole),
          code: 250,
          enhanced: undefined,
          lines: whole.lines,
        });
      }
    }
    expect(formatReply(ehloReplyFor(offer, 'c.example', true, true, false, false))).toBe(
      '250-mx.test greets c.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n' +
        '250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n',
    );
  });

  it('keeps each server offer apart', () => {
    const other = { ...offer, hostname: 'other.test', maxMessageSize: 5 };
    expect(formatReply(ehloReplyFor(offer, 'c', false, false, false, false))).toContain('250-SIZE 1000\r\n');
    expect(formatReply(ehloReplyFor(other, 'c', false, false, false, false))).toBe(
      '250-other.test greets c\r\n250-PIPELINING\r\n250-SIZE 5\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n',
    );
  });

  it('formats any client name as the whole reply does: one line, control characters replaced', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 40 }), fc.boolean(), fc.boolean(), (name, starttls, xclient) => {
        const cached = formatReply(ehloReplyFor(offer, name, starttls, false, false, xclient));
        const whole = formatReply(ehloReply({ ...offer, starttls, auth: [], xclient }, name));
        // The whole builder splits its text at line breaks; the greeting line keeps one line always.
        if (!name.includes('\n')) expect(cached).toBe(whole);
        const shown = [...name].map((c) => (c === '\t' || (c >= ' ' && c !== '\x7f') ? c : ' ')).join('');
        expect(cached.split('\r\n')[0]).toBe(`250-mx.test greets ${shown}`);
      }),
      { numRuns: 300 },
    );
  });
});
