/** SMTP AUTH (RFC 4954) over real sockets, with exact replies and real clients. */
import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  RequestHandler,
  scramSecret,
  SMTPError,
  type HandlerClass,
  type AuthCredentials,
  type AuthDecision,
  type Authenticator,
  type SettingsInput,
} from '../../lib/index.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { runPython } from '../helpers/python.js';
import { tlsTransport } from '../helpers/mailer.js';
import { RawClient } from '../helpers/raw-client.js';
import { scramAuth } from '../helpers/scram-client.js';
import { closeServers, startServer } from '../helpers/server.js';

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.cleanup());
afterEach(closeServers);

const PASSWORDS: Record<string, string> = { alice: 'wonderland', tim: 'tanstaaftanstaaf' };
const SCRAM = { alice: scramSecret('wonderland') };

/** An authenticator over a tiny user store, for every mechanism. */
const authenticate: Authenticator = (credentials: AuthCredentials): AuthDecision => {
  switch (credentials.mechanism) {
    case 'PLAIN':
    case 'LOGIN':
      return PASSWORDS[credentials.username] === credentials.password;
    case 'CRAM-MD5': {
      const password = PASSWORDS[credentials.username];
      return password !== undefined && credentials.verify(password);
    }
    case 'XOAUTH2':
      return credentials.accessToken === 'good-token' ? `${credentials.username}` : false;
    case 'SCRAM-SHA-256':
      return SCRAM[credentials.username as 'alice'] ?? false;
  }
};

const ALL = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2', 'SCRAM-SHA-256'] as const;
const b64 = (text: string): string => Buffer.from(text).toString('base64');

async function plainServer(settings: SettingsInput = {}, handler?: HandlerClass): Promise<number> {
  const { port } = await startServer(handler, { authenticate, authMechanisms: [...ALL], allowInsecureAuth: true, ...settings });
  return port;
}

async function greeted(port: number): Promise<RawClient> {
  const c = await RawClient.ehlo(port);
  return c;
}

describe('offering AUTH', () => {
  it('neither offers nor accepts AUTH before TLS, then does both after STARTTLS', async () => {
    const { port } = await startServer(undefined, { authenticate, tls: { key: certs.key, cert: certs.cert } });
    const c = await RawClient.greeted(port);
    expect(await c.command('EHLO c.test')).not.toContain('AUTH');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe(
      '538 5.7.11 Encryption required for requested authentication mechanism\r\n',
    );
    await c.command('STARTTLS');
    await c.startTls({ ca: certs.ca, servername: 'localhost' });
    expect(await c.command('EHLO c.test')).toContain('250 AUTH PLAIN LOGIN\r\n');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe('235 2.7.0 Authentication successful\r\n');
    c.close();
  });

  it('offers the configured mechanisms in order when plaintext AUTH is allowed', async () => {
    const c = await RawClient.greeted(await plainServer());
    expect(await c.command('EHLO c.test')).toContain('250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 SCRAM-SHA-256\r\n');
    c.close();
  });

  it('does not offer AUTH without an authenticate setting', async () => {
    const { port } = await startServer(undefined, { allowInsecureAuth: true });
    const c = await greeted(port);
    expect(await c.command('AUTH PLAIN')).toBe('502 5.5.1 AUTH not implemented\r\n');
    c.close();
  });
});

describe('command order and syntax', () => {
  it('refuses AUTH before EHLO, after HELO, twice, and inside a transaction', async () => {
    const port = await plainServer();
    const c = await RawClient.greeted(port);
    expect(await c.command('AUTH PLAIN')).toBe('503 5.5.1 Bad sequence of commands: send EHLO first\r\n');
    await c.command('HELO c.test');
    expect(await c.command('AUTH PLAIN')).toBe('503 5.5.1 Bad sequence of commands: send EHLO first\r\n');
    await c.command('EHLO c.test');
    await c.command('MAIL FROM:<a@b.test>');
    expect(await c.command('AUTH PLAIN')).toBe('503 5.5.1 Bad sequence of commands: AUTH not allowed during a mail transaction\r\n');
    await c.command('RSET');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe('235 2.7.0 Authentication successful\r\n');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe(
      '503 5.5.1 Bad sequence of commands: already authenticated\r\n',
    );
    c.close();
  });

  it('answers an unknown mechanism 504, bad base64 501, * with 501', async () => {
    const c = await greeted(await plainServer());
    expect(await c.command('AUTH GSSAPI')).toBe('504 5.5.4 Unrecognized authentication type\r\n');
    expect(await c.command('AUTH PLAIN not*base64')).toBe('501 5.5.2 Cannot decode response\r\n');
    expect(await c.command('AUTH PLAIN')).toBe('334 \r\n');
    expect(await c.command('%%%')).toBe('501 5.5.2 Cannot decode response\r\n');
    expect(await c.command('AUTH LOGIN')).toBe(`334 ${b64('Username:')}\r\n`);
    expect(await c.command('*')).toBe('501 5.7.0 Authentication cancelled\r\n');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    c.close();
  });

  it('refuses an oversized SASL line without keeping it, and stays usable', async () => {
    const c = await greeted(await plainServer());
    expect(await c.command('AUTH PLAIN')).toBe('334 \r\n');
    expect(await c.command('A'.repeat(200_000))).toBe('500 5.5.6 Authentication exchange line is too long\r\n');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    c.close();
  });

  it('keeps ordinary commands to maxLineLength even though SASL lines may be longer', async () => {
    const c = await greeted(await plainServer());
    expect(await c.command(`NOOP ${'x'.repeat(2000)}`)).toBe('500 5.5.2 Line too long\r\n');
    c.close();
  });
});

describe('mechanisms', () => {
  it('PLAIN, with an initial response or after an empty challenge; the user reaches the request', async () => {
    let user: string | undefined;
    class Seeing extends RequestHandler {
      override prepare(): void {
        user = this.request.session.user;
      }
    }
    const c = await greeted(await plainServer({}, Seeing));
    expect(await c.command('AUTH PLAIN')).toBe('334 \r\n');
    expect(await c.command(b64('\0alice\0wonderland'))).toBe('235 2.7.0 Authentication successful\r\n');
    expect(await c.command('MAIL FROM:<alice@b.test> AUTH=<>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(user).toBe('alice');
    c.close();
  });

  it('LOGIN', async () => {
    const c = await greeted(await plainServer());
    expect(await c.command(`AUTH LOGIN ${b64('alice')}`)).toBe(`334 ${b64('Password:')}\r\n`);
    expect(await c.command(b64('wonderland'))).toBe('235 2.7.0 Authentication successful\r\n');
    c.close();
  });

  it('CRAM-MD5', async () => {
    const c = await greeted(await plainServer());
    const challenge = await c.command('AUTH CRAM-MD5');
    expect(challenge).toMatch(/^334 [A-Za-z0-9+/=]+\r\n$/);
    const text = Buffer.from(challenge.slice(4).trim(), 'base64').toString();
    expect(text).toMatch(/^<[0-9a-f]{24}\.\d+@mx\.test>$/);
    const digest = createHmac('md5', 'tanstaaftanstaaf').update(text).digest('hex');
    expect(await c.command(b64(`tim ${digest}`))).toBe('235 2.7.0 Authentication successful\r\n');
    c.close();
  });

  it('XOAUTH2, with the error challenge before 535', async () => {
    const c = await greeted(await plainServer());
    expect(await c.command(`AUTH XOAUTH2 ${b64('user=alice@b.test\x01auth=Bearer bad-token\x01\x01')}`)).toBe(
      `334 ${b64('{"status":"401","schemes":"bearer"}')}\r\n`,
    );
    expect(await c.command('')).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect(await c.command(`AUTH XOAUTH2 ${b64('user=alice@b.test\x01auth=Bearer good-token\x01\x01')}`)).toBe(
      '235 2.7.0 Authentication successful\r\n',
    );
    c.close();
  });

  it('SCRAM-SHA-256, with the server proving it knows the secret', async () => {
    const port = await plainServer();
    const c = await greeted(port);
    expect(await scramAuth(c, 'alice', 'wonderland')).toBe('235 2.7.0 Authentication successful\r\n');
    c.close();
    const d = await greeted(port);
    expect(await scramAuth(d, 'alice', 'wrong')).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect(await scramAuth(d, 'nobody', 'x')).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    d.close();
  });
});

describe('failures', () => {
  it('answers wrong credentials 535 5.7.8 and closes after maxAuthFailures with 421', async () => {
    const c = await greeted(await plainServer({ maxAuthFailures: 2 }));
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0nope')}`)).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    c.write(`AUTH PLAIN ${b64('\0alice\0nope')}\r\n`);
    expect(await c.closedByServer()).toBe(
      '535 5.7.8 Authentication credentials invalid\r\n421 4.7.0 Too many authentication failures, closing connection\r\n',
    );
  });

  it("answers 454 when authenticate throws, and the application's own SMTPError as it is", async () => {
    const failing: Authenticator = (credentials) => {
      if (credentials.mechanism === 'PLAIN' && credentials.username === 'down') throw new Error('user store unreachable');
      throw new SMTPError(535, [5, 7, 8], 'account locked');
    };
    const { port } = await startServer(undefined, { authenticate: failing, allowInsecureAuth: true });
    const c = await greeted(port);
    expect(await c.command(`AUTH PLAIN ${b64('\0down\0x')}`)).toBe('454 4.7.0 Temporary authentication failure\r\n');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0x')}`)).toBe('535 5.7.8 account locked\r\n');
    c.close();
  });

  it('requireAuth: refuses MAIL with 530 5.7.0 until AUTH', async () => {
    const c = await greeted(await plainServer({ requireAuth: true }));
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('530 5.7.0 Authentication required\r\n');
    await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`);
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    c.close();
  });

  it('never writes credentials to the log, even at trace level', async () => {
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString();
        done();
      },
    });
    const port = await plainServer({ logger: pino({ level: 'trace' }, sink) });
    const c = await greeted(port);
    await c.command(`AUTH PLAIN ${b64('\0alice\0secret-password-1')}`);
    await c.command('AUTH LOGIN');
    await c.command(b64('alice'));
    await c.command(b64('secret-password-2'));
    c.close();
    expect(logged).toContain('authentication failed');
    // At trace, the sizes of what was read and written, never the bytes.
    expect(logged).toMatch(/"bytes":\d+,"msg":"read"/);
    expect(logged).toMatch(/"bytes":\d+,"msg":"written"/);
    for (const secret of ['secret-password-1', 'secret-password-2', b64('\0alice\0secret-password-1'), b64('secret-password-2')]) {
      expect(logged).not.toContain(secret);
    }
  });
});

describe('the transcript at debug level', () => {
  it("logs each command and reply of smtplib's session, with AUTH redacted and no message content", async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const port = await plainServer({ logger, authMechanisms: ['LOGIN'] });
    const script = `
import smtplib
s = smtplib.SMTP('127.0.0.1', ${port}, local_hostname='client.test')
s.login('alice', 'wonderland')
s.sendmail('a@b.test', ['c@d.test'], 'Subject: private\\r\\n\\r\\nthe-body-text\\r\\n')
s.quit()
`;
    await runPython(script, port);
    const said = lines.map((l) => JSON.parse(l) as { msg: string; line?: string }).filter((l) => l.msg === 'C:' || l.msg === 'S:');
    const transcript = said.map((l) => `${l.msg} ${l.line ?? ''}`);
    expect(transcript.filter((l) => l.startsWith('C:'))).toEqual([
      'C: ehlo client.test',
      'C: AUTH LOGIN [redacted]',
      'C: [redacted]',
      'C: mail FROM:<a@b.test> size=35',
      'C: rcpt TO:<c@d.test>',
      'C: data',
      'C: quit',
    ]);
    expect(transcript.filter((l) => l.startsWith('S:')).map((l) => l.slice(0, 7))).toEqual([
      'S: 220 ',
      'S: 250-',
      'S: 334 ',
      'S: 235 ',
      'S: 250 ',
      'S: 250 ',
      'S: 354 ',
      'S: 250 ',
      'S: 221 ',
    ]);
    expect(transcript).toContain('S: 334 [redacted]');
    const all = lines.join('');
    for (const secret of ['wonderland', b64('wonderland'), 'the-body-text', 'private']) expect(all).not.toContain(secret);
  });
});

describe('real clients', () => {
  it('nodemailer: submission with STARTTLS and AUTH', async () => {
    const { port } = await startServer(undefined, {
      authenticate,
      tls: { key: certs.key, cert: certs.cert },
      requireTLS: true,
      requireAuth: true,
    });
    const transport = tlsTransport(port, certs.ca, 'starttls', { auth: { user: 'alice', pass: 'wonderland' } });
    expect((await transport.sendMail({ from: 'alice@b.test', to: 'c@d.test', text: 'x' })).response).toMatch(/^250 /);
    transport.close();
  });

  it('nodemailer: XOAUTH2 over implicit TLS (SMTPS)', async () => {
    const { port } = await startServer(undefined, {
      authenticate,
      authMechanisms: ['XOAUTH2'],
      tls: { key: certs.key, cert: certs.cert },
      implicitTLS: true,
    });
    const transport = tlsTransport(port, certs.ca, 'implicit', {
      auth: { type: 'OAuth2', user: 'alice@b.test', accessToken: 'good-token' },
    });
    expect((await transport.sendMail({ from: 'alice@b.test', to: 'c@d.test', text: 'x' })).response).toMatch(/^250 /);
    transport.close();
  });

  it("Python's smtplib: login() over starttls() picks CRAM-MD5", async () => {
    const { port } = await startServer(undefined, {
      authenticate,
      authMechanisms: ['CRAM-MD5', 'PLAIN', 'LOGIN'],
      tls: { key: certs.key, cert: certs.cert },
    });
    const out = await runPython(
      `
import os, smtplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(certs.caFile)})
s = smtplib.SMTP('localhost', int(os.environ['PORT']), timeout=10)
s.starttls(context=ctx)
print(s.login('tim', 'tanstaaftanstaaf'))
s.quit()
s = smtplib.SMTP('localhost', int(os.environ['PORT']), timeout=10)
s.starttls(context=ctx)
try:
    s.login('tim', 'wrong')
except smtplib.SMTPAuthenticationError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
`,
      port,
    );
    expect(out.trim().split('\n')).toEqual(["(235, b'2.7.0 Authentication successful')", '535 5.7.8 Authentication credentials invalid']);
  });
});
