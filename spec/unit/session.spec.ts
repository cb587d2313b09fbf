import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatReply, REPLIES, type Reply } from '../../lib/index.js';
import { LineEvent } from '../../lib/protocol/line-splitter.js';
import { Session, type Decision, type SessionFeatures, type SessionPolicy } from '../../lib/protocol/session.js';
import { SessionState } from '../../lib/protocol/command-order.js';
import type { TLSInfo } from '../../lib/protocol/session-info.js';

const POLICY: SessionPolicy = {
  hostname: 'mx.test',
  maxMessageSize: 1000,
  maxRecipients: 2,
  maxLineLength: 512,
  maxBadCommands: 5,
  maxAuthFailures: 2,
  smtputf8: true,
  requireTLS: false,
  requireAuth: false,
  allowInsecureAuth: false,
  authMechanisms: ['PLAIN', 'LOGIN'],
  bareLineEndings: 'normalize',
  strictSyntax: false,
  lmtp: false,
  chunking: true,
  dsn: false,
};
const PEER = { id: 'c1', remoteAddress: '192.0.2.1', remotePort: 4000, localAddress: '127.0.0.1', localPort: 25 };
const TLS: TLSInfo = {
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_128_GCM_SHA256',
  servername: undefined,
  clientCertificate: undefined,
  clientCertificateAuthorized: false,
};

function session(policy: Partial<SessionPolicy> = {}, features: SessionFeatures = { tls: false, auth: false }): Session {
  return new Session({ ...POLICY, ...policy }, features, PEER);
}

/** A line as the splitter hands it out: a range within the bytes read, here between other bytes. */
const line = (text: string): LineEvent => {
  const bytes = Buffer.from(`\r\n${text}\r\nNOOP`);
  return LineEvent.of(bytes, 2, bytes.length - 6);
};

/** The reply a decision sends first, as wire text, or the decision's kind when it sends none. */
function wire(d: Decision): string {
  if ('reply' in d) return formatReply(d.reply);
  if (d.kind === 'close') return d.replies.map(formatReply).join('');
  return d.kind;
}

/** Runs commands; hooks accept, the data ends at once. Returns what each line led to. */
function run(s: Session, ...lines: string[]): string[] {
  return lines.map((text) => {
    const d = s.line(line(text));
    switch (d.kind) {
      case 'hello':
        return formatReply(s.hello(d.esmtp, d.domain));
      case 'mail':
        s.mailAnswered(true);
        return 'mail';
      case 'rcpt':
        s.rcptAnswered(true);
        return 'rcpt';
      case 'data':
        s.dataEnded();
        return formatReply(d.reply);
      default:
        return wire(d);
    }
  });
}

const r = (reply: Reply): string => formatReply(reply);

describe('Session: command order (503)', () => {
  it('refuses MAIL before HELO, RCPT before MAIL, DATA before RCPT, and a nested MAIL', () => {
    const s = session({ maxBadCommands: 10 });
    expect(
      run(s, 'MAIL FROM:<a@b.test>', 'HELO c.test', 'RCPT TO:<x@y.test>', 'DATA', 'MAIL FROM:<a@b.test>', 'DATA', 'MAIL FROM:<a@b.test>'),
    ).toEqual([
      '503 5.5.1 Bad sequence of commands: send HELO/EHLO first\r\n',
      '250 mx.test\r\n',
      '503 5.5.1 Bad sequence of commands: need MAIL command\r\n',
      '503 5.5.1 Bad sequence of commands: need MAIL command\r\n',
      'mail',
      '503 5.5.1 Bad sequence of commands: need RCPT command\r\n',
      '503 5.5.1 Bad sequence of commands: nested MAIL command\r\n',
    ]);
  });

  it('ends the transaction at RSET and at a new EHLO (RFC 5321 §4.1.4)', () => {
    const s = session();
    run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<x@y.test>');
    expect(s.state).toBe(SessionState.InRcpt);
    expect(wire(s.line(line('RSET')))).toBe(r(REPLIES.ok()));
    expect(s.state).toBe(SessionState.Greeted);
    run(s, 'MAIL FROM:<a@b.test>');
    expect(s.line(line('EHLO c.test')).kind).toBe('hello');
    expect(s.state).toBe(SessionState.Greeted);
  });

  it('closes with 421 once maxBadCommands refusals were sent, after the last refusal', () => {
    const s = session({ maxBadCommands: 2 });
    expect(run(s, 'BOGUS')).toEqual([r(REPLIES.unrecognized())]);
    expect(run(s, 'DATA')).toEqual(['503 5.5.1 Bad sequence of commands: need MAIL command\r\n' + r(REPLIES.tooManyErrors())]);
    expect(s.state).toBe(SessionState.Closed);
  });

  it('after a refusal at connect answers every command but QUIT with 503 (RFC 5321 §3.1)', () => {
    const s = session();
    s.refuseConnection();
    expect(run(s, 'EHLO c.test', 'NOOP', 'QUIT')).toEqual([
      '503 5.5.1 Bad sequence of commands: connection refused, send QUIT\r\n',
      '503 5.5.1 Bad sequence of commands: connection refused, send QUIT\r\n',
      r(REPLIES.closing()),
    ]);
  });
});

describe('Session: policy gates', () => {
  it('answers MAIL with 530 until TLS under requireTLS, then lets it through', () => {
    const s = session({ requireTLS: true }, { tls: true, auth: false });
    expect(run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>')[1]).toBe(r(REPLIES.tlsRequired()));
    expect(run(s, 'STARTTLS')).toEqual([r(REPLIES.readyToStartTls())]);
    s.tlsStarted(TLS);
    expect(run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>')[1]).toBe('mail');
  });

  it('answers MAIL with 530 until AUTH under requireAuth', () => {
    const s = session({ requireAuth: true, allowInsecureAuth: true }, { tls: false, auth: true });
    expect(run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>')[1]).toBe(r(REPLIES.authRequired()));
    s.authenticated('alice');
    expect(run(s, 'MAIL FROM:<a@b.test>')).toEqual(['mail']);
    expect(s.info().user).toBe('alice');
  });

  it('answers a declared SIZE over the limit with 552 at MAIL (RFC 1870 §6.2), not counted as an error', () => {
    const s = session({ maxBadCommands: 1 });
    expect(run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test> SIZE=1001', 'MAIL FROM:<a@b.test> SIZE=1000')).toEqual([
      expect.stringMatching(/^250-mx.test/) as unknown as string,
      r(REPLIES.messageTooBig()),
      'mail',
    ]);
  });

  it('answers recipients past maxRecipients with 452, and counts only accepted ones', () => {
    const s = session();
    run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>');
    expect(s.line(line('RCPT TO:<x@y.test>')).kind).toBe('rcpt');
    s.rcptAnswered(false);
    expect(run(s, 'RCPT TO:<x@y.test>', 'RCPT TO:<z@y.test>', 'RCPT TO:<w@y.test>')).toEqual([
      'rcpt',
      'rcpt',
      r(REPLIES.tooManyRecipients()),
    ]);
    expect(run(s, 'RSET', 'MAIL FROM:<a@b.test>', 'RCPT TO:<x@y.test>')).toEqual([r(REPLIES.ok()), 'mail', 'rcpt']);
  });

  it('refuses MAIL … SMTPUTF8 addresses without it, and takes them with it', () => {
    const s = session();
    expect(run(s, 'EHLO c.test', 'MAIL FROM:<jörg@b.test>', 'MAIL FROM:<jörg@b.test> SMTPUTF8', 'RCPT TO:<ünï@y.test>')).toEqual([
      expect.stringMatching(/SMTPUTF8/) as unknown as string,
      r(REPLIES.nonAsciiAddress()),
      'mail',
      'rcpt',
    ]);
  });
});

describe('Session: STARTTLS (RFC 3207)', () => {
  it('is 502 without TLS configured, 503 inside a transaction and inside TLS', () => {
    expect(run(session(), 'STARTTLS')).toEqual([r(REPLIES.notImplemented('STARTTLS'))]);
    const s = session({}, { tls: true, auth: false });
    expect(run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>', 'STARTTLS')[2]).toBe(
      '503 5.5.1 Bad sequence of commands: STARTTLS not allowed during a mail transaction\r\n',
    );
    run(s, 'RSET', 'STARTTLS');
    s.tlsStarted(TLS);
    expect(run(s, 'EHLO c.test', 'STARTTLS')[1]).toBe(r(REPLIES.tlsAlreadyActive()));
  });

  it('forgets the HELO name and the user (RFC 3207 §4.2), and offers STARTTLS only before TLS', () => {
    const s = session({ allowInsecureAuth: true }, { tls: true, auth: true });
    const before = run(s, 'EHLO c.test')[0];
    expect(before).toContain('250-STARTTLS');
    s.authenticated('alice');
    run(s, 'STARTTLS');
    expect(s.info()).toMatchObject({ heloName: '', esmtp: false, user: undefined, secure: false });
    expect(s.state).toBe(SessionState.Connected);
    s.tlsStarted(TLS);
    expect(s.info()).toMatchObject({ secure: true, tls: TLS });
    expect(run(s, 'EHLO c.test')[0]).not.toContain('STARTTLS');
  });
});

describe('Session: AUTH gates (RFC 4954)', () => {
  it('refuses in order: not configured, no TLS, HELO not EHLO, unknown mechanism, bad base64', () => {
    expect(run(session(), 'EHLO c.test', 'AUTH PLAIN')[1]).toBe(r(REPLIES.notImplemented('AUTH')));
    expect(run(session({}, { tls: false, auth: true }), 'EHLO c.test', 'AUTH PLAIN')[1]).toBe(r(REPLIES.encryptionRequired()));
    const s = session({ allowInsecureAuth: true }, { tls: false, auth: true });
    expect(run(s, 'HELO c.test', 'AUTH PLAIN')[1]).toBe('503 5.5.1 Bad sequence of commands: send EHLO first\r\n');
    expect(run(s, 'EHLO c.test', 'AUTH CRAM-MD5', 'AUTH PLAIN %%%')).toEqual([
      expect.stringMatching(/AUTH PLAIN LOGIN/) as unknown as string,
      r(REPLIES.authUnknownMechanism()),
      r(REPLIES.authBadBase64()),
    ]);
    expect(s.line(line('AUTH PLAIN AGFsaWNlAHNlY3JldA=='))).toEqual({
      kind: 'auth',
      mechanism: 'PLAIN',
      initial: Buffer.from('\0alice\0secret'),
    });
    expect(s.line(line('AUTH LOGIN ='))).toEqual({ kind: 'auth', mechanism: 'LOGIN', initial: Buffer.alloc(0) });
  });

  it('refuses a second AUTH and AUTH inside a transaction with 503', () => {
    const s = session({ allowInsecureAuth: true }, { tls: false, auth: true });
    run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>');
    expect(run(s, 'AUTH PLAIN')).toEqual(['503 5.5.1 Bad sequence of commands: AUTH not allowed during a mail transaction\r\n']);
    run(s, 'RSET');
    s.authenticated('alice');
    expect(run(s, 'AUTH PLAIN')).toEqual([r(REPLIES.alreadyAuthenticated())]);
  });

  it('closes after maxAuthFailures wrong credentials, counted apart from other errors', () => {
    const s = session({ allowInsecureAuth: true }, { tls: false, auth: true });
    expect(wire(s.authFailed(REPLIES.authInvalid()))).toBe(r(REPLIES.authInvalid()));
    expect(wire(s.authFailed(REPLIES.authInvalid()))).toBe(r(REPLIES.authInvalid()) + r(REPLIES.tooManyAuthFailures()));
    expect(s.state).toBe(SessionState.Closed);
  });
});

describe('Session: lines', () => {
  it('refuses over-long lines, but lets AUTH lines reach the SASL limit', () => {
    const s = session({ allowInsecureAuth: true }, { tls: false, auth: true });
    run(s, 'EHLO c.test');
    expect(run(s, `NOOP ${'x'.repeat(600)}`)).toEqual([r(REPLIES.lineTooLong())]);
    expect(s.line(LineEvent.tooLong())).toEqual({ kind: 'reply', reply: REPLIES.lineTooLong() });
    expect(s.line(line(`AUTH PLAIN ${'A'.repeat(600)}`)).kind).toBe('auth');
  });

  it('refuses a line ended by a bare LF under bareLineEndings: reject', () => {
    const s = session({ bareLineEndings: 'reject' });
    expect(wire(s.line(LineEvent.of(Buffer.from('NOOP'), 0, 4, true)))).toBe(r(REPLIES.bareLineFeed()));
  });

  it('takes a space after MAIL FROM: and RCPT TO: by default, and answers it 501 under strictSyntax', () => {
    expect(run(session(), 'EHLO c.test', 'MAIL FROM: <a@b.test>', 'RCPT TO: <x@y.test>').slice(1)).toEqual(['mail', 'rcpt']);
    expect(
      run(session({ strictSyntax: true }), 'EHLO c.test', 'MAIL FROM: <a@b.test>', 'MAIL FROM:<a@b.test>', 'RCPT TO: <x@y.test>').slice(1),
    ).toEqual([r(REPLIES.syntax('MAIL FROM:<address> [parameters]')), 'mail', r(REPLIES.syntax('RCPT TO:<address> [parameters]'))]);
  });

  it('answers QUIT with 221 and an HTTP request with 421, both closing', () => {
    expect(run(session(), 'QUIT')).toEqual([r(REPLIES.closing())]);
    expect(run(session(), 'GET / HTTP/1.1')).toEqual([r(REPLIES.notSmtp())]);
  });
});

describe('Session: BDAT (RFC 3030) and LMTP (RFC 2033)', () => {
  it('keeps the running total under maxMessageSize before a chunk is read, and still reads a refused one', () => {
    const s = session({ maxMessageSize: 12 });
    run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<c@d.test>');
    expect(s.line(line('BDAT 8'))).toEqual({ kind: 'bdat', size: 8, last: false });
    s.chunkEnded(false);
    expect(s.line(line('BDAT 8 LAST'))).toEqual({ kind: 'skip', size: 8, reply: REPLIES.messageTooBig(), abort: true });
    expect(s.state).toBe(SessionState.Greeted);
    expect(wire(s.line(line('BDAT 3')))).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
  });

  it('refuses DATA after BODY=BINARYMIME, and reads the chunk of a BDAT when chunking is off', () => {
    const s = session();
    run(s, 'EHLO c.test', 'MAIL FROM:<a@b.test> BODY=BINARYMIME', 'RCPT TO:<c@d.test>');
    expect(wire(s.line(line('DATA')))).toBe('503 5.5.1 Bad sequence of commands: BODY=BINARYMIME requires BDAT\r\n');
    const off = session({ chunking: false });
    run(off, 'EHLO c.test');
    expect(off.line(line('BDAT 4'))).toMatchObject({ kind: 'skip', size: 4, abort: false });
    expect(run(off, 'MAIL FROM:<a@b.test> BODY=BINARYMIME')).toEqual(['501 5.5.4 BODY=BINARYMIME not supported\r\n']);
  });

  it('greets with LHLO only under lmtp, and names it in 503s', () => {
    const s = session({ lmtp: true });
    expect(run(s, 'EHLO c.test', 'HELO c.test', 'MAIL FROM:<a@b.test>')).toEqual([
      '500 5.5.1 This is an LMTP server: greet with LHLO\r\n',
      '500 5.5.1 This is an LMTP server: greet with LHLO\r\n',
      '503 5.5.1 Bad sequence of commands: send LHLO first\r\n',
    ]);
    expect(s.line(line('LHLO c.test'))).toEqual({ kind: 'hello', esmtp: true, domain: 'c.test' });
    expect(run(session(), 'LHLO c.test')).toEqual(['500 5.5.2 Command not recognized\r\n']);
  });
});

describe('Session: facts', () => {
  it('hands out one frozen info value until a fact changes', () => {
    const s = session({ allowInsecureAuth: true }, { tls: false, auth: true });
    const first = s.info();
    expect(Object.isFrozen(first)).toBe(true);
    expect(first).toEqual({ ...PEER, heloName: '', esmtp: false, secure: false, tls: undefined, user: undefined });
    expect(s.info()).toBe(first);
    run(s, 'EHLO c.test');
    const greeted = s.info();
    expect(greeted).not.toBe(first);
    expect(greeted).toMatchObject({ heloName: 'c.test', esmtp: true });
    run(s, 'NOOP', 'MAIL FROM:<a@b.test>');
    expect(s.info()).toBe(greeted);
  });

  it('after a refused HELO makes the client greet again', () => {
    const s = session();
    const d = s.line(line('EHLO bad.test'));
    expect(d.kind).toBe('hello');
    if (d.kind !== 'hello') return;
    expect(s.hello(d.esmtp, d.domain, REPLIES.heloRefused())).toBe(REPLIES.heloRefused());
    expect(run(s, 'MAIL FROM:<a@b.test>')).toEqual(['503 5.5.1 Bad sequence of commands: send HELO/EHLO first\r\n']);
  });
});

// A small model of RFC 5321's command order (with RFC 3030's BDAT), run against the Session with
// random command sequences and random hook answers.
type ModelState = 'connected' | 'greeted' | 'mail' | 'rcpt' | 'chunks' | 'closed';
const COMMANDS = [
  'BDAT 10',
  'BDAT 5 LAST',
  'HELO c.test',
  'EHLO c.test',
  'MAIL FROM:<a@b.test>',
  'RCPT TO:<x@y.test>',
  'DATA',
  'RSET',
  'NOOP',
  'QUIT',
  'VRFY x',
] as const;

describe('Session: property', () => {
  it('follows RFC 5321 command order for any command sequence and any hook answers', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...COMMANDS), fc.boolean()), { maxLength: 40 }), (steps) => {
        const s = session({ maxBadCommands: 1000, maxRecipients: 1000 });
        let model: ModelState = 'connected';
        for (const [command, accept] of steps) {
          if (model === 'closed') break;
          const d = s.line(line(command));
          const verb = command.split(' ')[0];
          const bad = (): void => {
            expect(d.kind).toBe(verb === 'BDAT' ? 'skip' : 'reply');
            expect('reply' in d && d.reply.code).toBe(503);
          };
          switch (verb) {
            case 'HELO':
            case 'EHLO':
              expect(d.kind).toBe('hello');
              if (d.kind === 'hello') s.hello(d.esmtp, d.domain);
              model = 'greeted';
              break;
            case 'MAIL':
              if (model !== 'greeted') bad();
              else {
                expect(d.kind).toBe('mail');
                s.mailAnswered(accept);
                model = accept ? 'mail' : 'greeted';
              }
              break;
            case 'RCPT':
              if (model !== 'mail' && model !== 'rcpt') bad();
              else {
                expect(d.kind).toBe('rcpt');
                s.rcptAnswered(accept);
                if (accept) model = 'rcpt';
              }
              break;
            case 'DATA':
              if (model !== 'rcpt') bad();
              else {
                expect(d.kind).toBe('data');
                s.dataEnded();
                model = 'greeted';
              }
              break;
            case 'BDAT':
              if (model !== 'rcpt' && model !== 'chunks') bad();
              else {
                const last = command.endsWith('LAST');
                expect(d).toEqual({ kind: 'bdat', size: last ? 5 : 10, last });
                s.chunkEnded(last);
                model = last ? 'greeted' : 'chunks';
              }
              break;
            case 'RSET':
              expect(d.kind).toBe('reset');
              if (model !== 'connected') model = 'greeted';
              break;
            case 'QUIT':
              expect(d.kind).toBe('close');
              model = 'closed';
              break;
            default:
              expect(d.kind).toBe('reply');
          }
          const expected = {
            connected: SessionState.Connected,
            greeted: SessionState.Greeted,
            mail: SessionState.InMail,
            rcpt: SessionState.InRcpt,
            chunks: SessionState.InChunks,
            closed: SessionState.Closed,
          }[model];
          expect(s.state).toBe(expected);
        }
      }),
      { numRuns: 300 },
    );
  });
});
