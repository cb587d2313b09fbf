import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatReply } from '../../lib/protocol/reply.js';
import { createExchange, decodeBase64, scramSecret, type SaslStep } from '../../lib/protocol/sasl.js';

const b = (text: string): Buffer => Buffer.from(text);
const text = (step: SaslStep): string =>
  step.kind === 'challenge' ? step.data.toString() : step.kind === 'failure' ? formatReply(step.reply) : step.kind;

describe('SCRAM-SHA-256', () => {
  // RFC 7677 §3, user "user", password "pencil".
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const serverNonce = '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';

  it('runs the RFC 7677 example exchange to the byte', () => {
    const ex = createExchange('SCRAM-SHA-256', { hostname: 'h', serverNonce: () => serverNonce });
    const first = ex.start(b('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    expect(first).toEqual({ kind: 'credentials', credentials: { mechanism: 'SCRAM-SHA-256', username: 'user', authzid: undefined } });
    expect(text(ex.decide(scramSecret('pencil', { salt, iterations: 4096 })))).toBe(
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    );
    expect(
      text(ex.respond(b('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='))),
    ).toBe('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    expect(ex.respond(b(''))).toEqual({ kind: 'success', user: 'user' });
  });

  it('refuses a wrong proof with 535', () => {
    const ex = createExchange('SCRAM-SHA-256', { hostname: 'h', serverNonce: () => serverNonce });
    ex.start(b('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    ex.decide(scramSecret('not pencil', { salt }));
    expect(
      text(ex.respond(b('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='))),
    ).toBe('535 5.7.8 Authentication credentials invalid\r\n');
  });

  it('runs a plausible exchange for an unknown user and fails it at the end', () => {
    const ex = createExchange('SCRAM-SHA-256', { hostname: 'h', serverNonce: () => serverNonce });
    ex.start(b('n,,n=nobody,r=abc'));
    expect(text(ex.decide(false))).toMatch(/^r=abc%hvYDpWUa2RaTCAfuxFIlj\)hNlF\$k0,s=[A-Za-z0-9+/=]+,i=4096$/);
    expect(text(ex.respond(b(`c=biws,r=abc${serverNonce},p=${Buffer.alloc(32).toString('base64')}`)))).toBe(
      '535 5.7.8 Authentication credentials invalid\r\n',
    );
  });

  it('refuses channel binding, mandatory extensions and a changed nonce', () => {
    const start = (msg: string): string => text(createExchange('SCRAM-SHA-256', { hostname: 'h' }).start(b(msg)));
    expect(start('p=tls-unique,,n=user,r=x')).toBe('501 5.5.2 Channel binding is not supported\r\n');
    expect(start('n,,n=user,r=x,m=ext')).toBe('501 5.5.2 Unsupported SCRAM extension\r\n');
    expect(start('n,,n=us=er,r=x')).toBe('501 5.5.2 Malformed SCRAM message\r\n');
    const ex = createExchange('SCRAM-SHA-256', { hostname: 'h', serverNonce: () => 'S' });
    ex.start(b('n,,n=user,r=abc'));
    ex.decide(scramSecret('pencil'));
    expect(text(ex.respond(b('c=biws,r=abcX,p=AAAA')))).toBe('535 5.7.8 Authentication credentials invalid\r\n');
  });

  it('decodes =2C and =3D in user names, and keeps a distinct authzid', () => {
    const ex = createExchange('SCRAM-SHA-256', { hostname: 'h' });
    expect(ex.start(b('n,a=admin,n=a=2Cb=3Dc,r=x'))).toEqual({
      kind: 'credentials',
      credentials: { mechanism: 'SCRAM-SHA-256', username: 'a,b=c', authzid: 'admin' },
    });
  });

  it('answers 454 when the application returns a verdict instead of a secret', () => {
    const ex = createExchange('SCRAM-SHA-256', { hostname: 'h' });
    ex.start(b('n,,n=user,r=x'));
    expect(text(ex.decide(true))).toBe('454 4.7.0 Temporary authentication failure\r\n');
  });

  it('refuses fewer than 4096 iterations when deriving a secret', () => {
    expect(() => scramSecret('x', { iterations: 10 })).toThrow(
      'scramSecret: iterations must be an integer of at least 4096 (RFC 7677 §4), got 10',
    );
  });
});

describe('PLAIN', () => {
  it('splits authzid, user and password', () => {
    const ex = createExchange('PLAIN', { hostname: 'h' });
    expect(ex.start(b('\0alice\0secret'))).toEqual({
      kind: 'credentials',
      credentials: { mechanism: 'PLAIN', username: 'alice', password: 'secret', authzid: undefined },
    });
    expect(ex.decide(true)).toEqual({ kind: 'success', user: 'alice' });
  });

  it('asks for the response when there was no initial one, and refuses malformed ones', () => {
    const ex = createExchange('PLAIN', { hostname: 'h' });
    expect(text(ex.start(undefined))).toBe('');
    expect(text(ex.respond(b('alice\0secret')))).toBe('501 5.5.2 Malformed PLAIN response\r\n');
  });

  it('refuses with 535 and accepts as a chosen identity', () => {
    const ex = createExchange('PLAIN', { hostname: 'h' });
    ex.start(b('boss\0alice\0secret'));
    expect(text(ex.decide(false))).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect(ex.decide('alice@example.com')).toEqual({ kind: 'success', user: 'alice@example.com' });
  });
});

describe('LOGIN', () => {
  it('asks for the user name then the password', () => {
    const ex = createExchange('LOGIN', { hostname: 'h' });
    expect(text(ex.start(undefined))).toBe('Username:');
    expect(text(ex.respond(b('alice')))).toBe('Password:');
    expect(ex.respond(b('secret'))).toEqual({
      kind: 'credentials',
      credentials: { mechanism: 'LOGIN', username: 'alice', password: 'secret', authzid: undefined },
    });
  });

  it('takes the user name as an initial response', () => {
    const ex = createExchange('LOGIN', { hostname: 'h' });
    expect(text(ex.start(b('alice')))).toBe('Password:');
  });
});

describe('CRAM-MD5', () => {
  it('lets the application verify the digest against the stored password', () => {
    const ex = createExchange('CRAM-MD5', { hostname: 'mx.test', random: (n) => Buffer.alloc(n, 1) });
    const step = ex.start(undefined);
    const challengeText = text(step);
    expect(challengeText).toMatch(/^<0{1}1{1}(01){11}\.\d+@mx\.test>$/);
    const digest = createHmac('md5', 'tanstaaftanstaaf').update(challengeText).digest('hex');
    const creds = ex.respond(b(`tim ${digest}`));
    if (creds.kind !== 'credentials' || creds.credentials.mechanism !== 'CRAM-MD5') throw new Error('expected credentials');
    expect(creds.credentials.username).toBe('tim');
    expect(creds.credentials.verify('tanstaaftanstaaf')).toBe(true);
    expect(creds.credentials.verify('wrong')).toBe(false);
  });

  it('refuses an initial response and a malformed digest', () => {
    expect(text(createExchange('CRAM-MD5', { hostname: 'h' }).start(b('x')))).toBe('501 5.5.2 CRAM-MD5 takes no initial response\r\n');
    const ex = createExchange('CRAM-MD5', { hostname: 'h' });
    ex.start(undefined);
    expect(text(ex.respond(b('tim nothex')))).toBe('501 5.5.2 Malformed CRAM-MD5 response\r\n');
  });
});

describe('XOAUTH2', () => {
  it('reads the user and bearer token; a refusal sends the error challenge first', () => {
    const ex = createExchange('XOAUTH2', { hostname: 'h' });
    expect(ex.start(b('user=someone@example.com\x01auth=Bearer ya29.token\x01\x01'))).toEqual({
      kind: 'credentials',
      credentials: { mechanism: 'XOAUTH2', username: 'someone@example.com', accessToken: 'ya29.token' },
    });
    expect(text(ex.decide(false))).toBe('{"status":"401","schemes":"bearer"}');
    expect(text(ex.respond(b('')))).toBe('535 5.7.8 Authentication credentials invalid\r\n');
  });
});

describe('decodeBase64', () => {
  it('is strict', () => {
    expect(decodeBase64('YWJj')?.toString()).toBe('abc');
    expect(decodeBase64('')?.length).toBe(0);
    expect(decodeBase64('YWJ')).toBeUndefined();
    expect(decodeBase64('YW!j')).toBeUndefined();
  });

  it('property: decodes whatever Buffer encodes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(decodeBase64(Buffer.from(bytes).toString('base64'))).toEqual(Buffer.from(bytes));
      }),
    );
  });
});
