import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pop3Content, Pop3Encoder } from '../../lib/pop3/encoder.js';
import { Pop3Session, type Pop3Action } from '../../lib/pop3/session.js';
import { everySplit } from '../helpers/splits.js';

const options = { hostname: 'pop.test', tlsAvailable: true, secure: false, requireTls: false };
const MESSAGES = [
  { uid: 'u1', size: 120 },
  { uid: 'u2', size: 200 },
];

function loggedIn(): Pop3Session {
  const session = new Pop3Session(options);
  session.line('USER alice');
  session.line('PASS secret');
  session.authenticated(MESSAGES);
  return session;
}

const lines = (a: Pop3Action): readonly string[] => ('lines' in a ? a.lines : []);

describe('POP3 session: AUTHORIZATION', () => {
  it('greets, takes USER then PASS (the rest of the line, spaces included), and says what the maildrop holds', () => {
    const session = new Pop3Session(options);
    expect(session.greeting()).toBe('+OK pop.test POP3 server ready');
    expect(session.line('user alice')).toEqual({ kind: 'reply', lines: ['+OK Send the password for alice'] });
    expect(session.line('PASS two words')).toEqual({ kind: 'authenticate', user: 'alice', password: 'two words' });
    expect(session.authenticated(MESSAGES)).toEqual({ kind: 'reply', lines: ['+OK alice has 2 messages (320 octets)'] });
    expect(session.state).toBe('transaction');
    expect(session.user).toBe('alice');
  });

  it('answers every wrong step with -ERR and a reason', () => {
    const session = new Pop3Session({ ...options, maxErrors: 100 });
    expect(lines(session.line('PASS x'))).toEqual(['-ERR Send USER first']);
    expect(lines(session.line('STAT'))).toEqual(['-ERR Not authenticated: send USER and PASS first']);
    expect(lines(session.line('USER'))).toEqual(['-ERR USER takes one argument: the mailbox name']);
    expect(lines(session.line('APOP alice 0123'))).toEqual(['-ERR APOP is not supported: use USER and PASS']);
    expect(lines(session.line('XYZZY'))).toEqual(['-ERR Unknown command']);
    expect(lines(session.line(''))).toEqual(['-ERR Empty command']);
    expect(lines(session.line('CAPA now'))).toEqual(['-ERR CAPA takes no argument']);
    expect(lines(session.line('USER a\u0000b'))).toEqual(['-ERR Control characters are not allowed']);
    session.line('USER alice');
    expect(lines(session.authFailed('invalid'))).toEqual(['-ERR [AUTH] Invalid user name or password']);
    expect(lines(session.authFailed('in-use'))).toEqual(['-ERR [IN-USE] The mailbox is already in use']);
    expect(lines(session.authFailed('temporary'))).toEqual(['-ERR [SYS/TEMP] Authentication is not possible now, try again later']);
    expect(lines(session.line('PASS again'))).toEqual(['-ERR Send USER first']);
  });

  it('requires STLS before USER and PASS when told to, offers STLS once, and forgets USER across it', () => {
    const session = new Pop3Session({ ...options, requireTls: true });
    expect(lines(session.line('CAPA'))).toEqual([
      '+OK Capability list follows',
      'TOP',
      'UIDL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'STLS',
      'IMPLEMENTATION Sirocco',
      '.',
    ]);
    expect(lines(session.line('USER alice'))).toEqual(['-ERR [AUTH] Plaintext authentication is disabled: use STLS first']);
    expect(session.line('STLS')).toEqual({ kind: 'stls' });
    session.secured();
    expect(lines(session.line('STLS'))).toEqual(['-ERR TLS is already active']);
    expect(lines(session.line('CAPA'))).toEqual([
      '+OK Capability list follows',
      'TOP',
      'UIDL',
      'USER',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'IMPLEMENTATION Sirocco',
      '.',
    ]);
    expect(lines(new Pop3Session({ ...options, tlsAvailable: false }).line('STLS'))).toEqual(['-ERR TLS is not available']);
  });

  it('closes after too many errors, and at QUIT', () => {
    const session = new Pop3Session({ ...options, maxErrors: 3 });
    session.line('A');
    session.line('B');
    expect(session.line('C')).toEqual({ kind: 'close', lines: ['-ERR Unknown command', '-ERR Too many errors, closing connection'] });
    expect(new Pop3Session(options).line('QUIT')).toEqual({ kind: 'close', lines: ['+OK pop.test POP3 server signing off'], asked: true });
  });
});

describe('POP3 session: TRANSACTION and UPDATE', () => {
  it('STAT, LIST, UIDL, RETR, TOP, DELE, RSET and NOOP as RFC 1939 shows them', () => {
    const s = loggedIn();
    expect(lines(s.line('STAT'))).toEqual(['+OK 2 320']);
    expect(lines(s.line('LIST'))).toEqual(['+OK 2 messages (320 octets)', '1 120', '2 200', '.']);
    expect(lines(s.line('LIST 2'))).toEqual(['+OK 2 200']);
    expect(lines(s.line('UIDL'))).toEqual(['+OK Unique ids follow', '1 u1', '2 u2', '.']);
    expect(lines(s.line('UIDL 1'))).toEqual(['+OK 1 u1']);
    expect(s.line('RETR 1')).toEqual({ kind: 'retrieve', uid: 'u1', size: 120, bodyLines: undefined });
    expect(s.line('TOP 2 0')).toEqual({ kind: 'retrieve', uid: 'u2', size: 200, bodyLines: 0 });
    expect(lines(s.line('DELE 1'))).toEqual(['+OK Message 1 deleted']);
    expect(lines(s.line('STAT'))).toEqual(['+OK 1 200']);
    expect(lines(s.line('LIST'))).toEqual(['+OK 1 message (200 octets)', '2 200', '.']);
    expect(lines(s.line('NOOP'))).toEqual(['+OK']);
    expect(lines(s.line('RSET'))).toEqual(['+OK 2 messages (320 octets)']);
    s.line('DELE 2');
    expect(s.line('QUIT')).toEqual({ kind: 'update', deleted: ['u2'] });
    expect(s.updated(true)).toEqual({ kind: 'close', lines: ['+OK pop.test POP3 server signing off (1 message left)'], asked: true });
  });

  it('refuses bad message numbers and arguments with the reason', () => {
    const s = new Pop3Session({ ...options, maxErrors: 100 });
    s.line('USER alice');
    s.authenticated(MESSAGES);
    expect(lines(s.line('RETR'))).toEqual(['-ERR RETR takes a message number']);
    expect(lines(s.line('RETR 0'))).toEqual(['-ERR Invalid message number: 0']);
    expect(lines(s.line('RETR x'))).toEqual(['-ERR Invalid message number: x']);
    expect(lines(s.line('RETR 3'))).toEqual(['-ERR No such message: 3']);
    expect(lines(s.line('RETR 99999999999'))).toEqual(['-ERR Invalid message number: 99999999999']);
    expect(lines(s.line('TOP 1'))).toEqual(['-ERR TOP takes a message number and a number of lines']);
    expect(lines(s.line('TOP 1 -1'))).toEqual(['-ERR TOP takes a message number and a number of lines']);
    expect(lines(s.line('STAT 1'))).toEqual(['-ERR STAT takes no argument']);
    s.line('DELE 1');
    expect(lines(s.line('DELE 1'))).toEqual(['-ERR Message 1 is deleted']);
    expect(lines(s.line('LIST 1'))).toEqual(['-ERR Message 1 is deleted']);
    expect(lines(s.line('USER bob'))).toEqual(['-ERR Already authenticated']);
    expect(lines(s.line('STLS'))).toEqual(['-ERR Already authenticated']);
    expect(s.updated(false)).toEqual({ kind: 'close', lines: ['-ERR [SYS/TEMP] Some deleted messages were not removed'], asked: true });
  });

  it('answers any line with one action, every reply line +OK, -ERR or part of a listing, never a throw', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 30 }), { maxLength: 30 }), fc.boolean(), (input, auth) => {
        const s = new Pop3Session({ ...options, maxErrors: 1000 });
        if (auth) {
          s.line('USER a');
          s.authenticated(MESSAGES);
        }
        for (const text of input) {
          const action = s.line(text);
          const first = lines(action)[0];
          if (first !== undefined) expect(first).toMatch(/^(\+OK|-ERR)/);
        }
      }),
    );
  });
});

describe('pop3Content', () => {
  it('stuffs dots, ends with CRLF and the terminating dot; TOP keeps the header and n body lines', () => {
    const message = Buffer.from('Subject: x\r\n\r\n.hidden\r\nline 2\r\n..two\r\nlast');
    expect(pop3Content(message).toString()).toBe('Subject: x\r\n\r\n..hidden\r\nline 2\r\n...two\r\nlast\r\n.\r\n');
    expect(pop3Content(message, 1).toString()).toBe('Subject: x\r\n\r\n..hidden\r\n.\r\n');
    expect(pop3Content(message, 0).toString()).toBe('Subject: x\r\n\r\n.\r\n');
    expect(pop3Content(Buffer.from('.x\nbare lf\n')).toString()).toBe('..x\r\nbare lf\r\n.\r\n');
  });

  it('a client that removes the stuffing gets the message back, whatever it holds', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[.a-z ]{0,8}$/), { maxLength: 12 }), (ls) => {
        const original = ls.map((l) => `${l}\r\n`).join('');
        const sent = pop3Content(Buffer.from(original)).toString();
        expect(sent.endsWith('\r\n.\r\n') || sent === '.\r\n').toBe(true);
        const received = sent
          .slice(0, -3)
          .split('\r\n')
          .map((l) => (l.startsWith('.') ? l.slice(1) : l))
          .join('\r\n');
        expect(received).toBe(original);
      }),
    );
  });
});

describe('Pop3Encoder', () => {
  const MESSAGES = [
    'Subject: x\r\n\r\n.hidden\r\nline 2\r\n..two\r\nlast',
    '.a\n.b\r\n\r\n.c\rd\r\n',
    'no blank line\r\n.at all\r\n',
    '\r\n\r\n.\r\n.\r\n',
  ];

  it('gives the same bytes whatever way the message is cut into reads', () => {
    for (const text of MESSAGES) {
      for (const lines of [undefined, 0, 1, 2]) {
        const whole = pop3Content(Buffer.from(text), lines);
        for (const pieces of everySplit(Buffer.from(text))) {
          const encoder = new Pop3Encoder(lines);
          const out = Buffer.concat([...pieces.map((p) => encoder.push(p)), encoder.end()]);
          expect(out.toString()).toBe(whole.toString());
        }
      }
    }
  });

  it('cut into any number of pieces, the same as whole', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[.a-z\r\n ]{0,40}$/),
        fc.array(fc.nat({ max: 40 }), { maxLength: 6 }),
        fc.option(fc.nat({ max: 4 }), { nil: undefined }),
        (text, cuts, lines) => {
          const bytes = Buffer.from(text);
          const at = [...new Set(cuts.filter((c) => c < bytes.length))].sort((a, b) => a - b);
          const encoder = new Pop3Encoder(lines);
          const parts: Buffer[] = [];
          let from = 0;
          for (const c of [...at, bytes.length]) {
            parts.push(encoder.push(bytes.subarray(from, c)));
            from = c;
          }
          parts.push(encoder.end());
          expect(Buffer.concat(parts).toString()).toBe(pop3Content(bytes, lines).toString());
        },
      ),
    );
  });
});
