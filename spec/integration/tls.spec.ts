/** STARTTLS (RFC 3207) and implicit TLS (RFC 8314) over real sockets, with real clients. */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RequestHandler, type HandlerClass, type SessionInfo } from '../../lib/index.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { runPython } from '../helpers/python.js';
import { tlsTransport } from '../helpers/mailer.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.cleanup());
afterEach(closeServers);

const EHLO_PLAIN =
  '250-mx.test greets c.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n';
const EHLO_SECURE =
  '250-mx.test greets c.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 REQUIRETLS\r\n';

function sessionRecorder(sessions: SessionInfo[]): HandlerClass {
  return class Recording extends RequestHandler {
    override prepare(): void {
      sessions.push(this.request.session);
    }
  };
}

describe('STARTTLS', () => {
  it('offers STARTTLS, upgrades, resets the session, stops offering it, refuses a second one', async () => {
    const sessions: SessionInfo[] = [];
    const { port } = await startServer(sessionRecorder(sessions), { tls: { key: certs.key, cert: certs.cert } });
    const c = await RawClient.greeted(port);
    expect(await c.command('EHLO c.test')).toBe(EHLO_PLAIN);
    expect(await c.command('STARTTLS extra')).toBe('501 5.5.4 Syntax: STARTTLS\r\n');
    expect(await c.command('STARTTLS')).toBe('220 2.0.0 Ready to start TLS\r\n');
    const secure = await c.startTls({ ca: certs.ca, servername: 'localhost' });
    expect(secure.authorized).toBe(true);
    // RFC 3207 §4.2: the client must greet again.
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: send HELO/EHLO first\r\n');
    expect(await c.command('EHLO c.test')).toBe(EHLO_SECURE);
    expect(await c.command('STARTTLS')).toBe('503 5.5.1 Bad sequence of commands: TLS already active\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(sessions[0]).toMatchObject({
      secure: true,
      heloName: 'c.test',
      tls: { protocol: 'TLSv1.3', servername: 'localhost', clientCertificate: undefined },
    });
    expect(sessions[0]?.tls?.cipher).toMatch(/^TLS_/);
    c.close();
  });

  it('never executes plaintext pipelined after STARTTLS (CVE-2011-0411)', async () => {
    let mails = 0;
    class Counting extends RequestHandler {
      override prepare(): void {
        mails++;
      }
    }
    const { port } = await startServer(Counting, { tls: { key: certs.key, cert: certs.cert } });
    const c = await RawClient.ehlo(port);
    c.write('STARTTLS\r\nEHLO evil.test\r\nMAIL FROM:<evil@x.test>\r\n');
    expect(await c.reply()).toBe('220 2.0.0 Ready to start TLS\r\n');
    await c.startTls({ ca: certs.ca, servername: 'localhost' });
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    expect(await c.command('RCPT TO:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    expect(mails).toBe(0);
    c.close();
  });

  it('refuses STARTTLS inside a transaction and when TLS is not configured', async () => {
    const { port } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert } });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    expect(await c.command('STARTTLS')).toBe('503 5.5.1 Bad sequence of commands: STARTTLS not allowed during a mail transaction\r\n');
    c.close();
    const plain = await startServer();
    const d = await RawClient.greeted(plain.port);
    expect(await d.command('STARTTLS')).toBe('502 5.5.1 STARTTLS not implemented\r\n');
    d.close();
  });

  it('requireTLS: refuses MAIL with 530 5.7.0 until TLS is up', async () => {
    const { port } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert }, requireTLS: true });
    const c = await RawClient.ehlo(port);
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('530 5.7.0 Must issue a STARTTLS command first\r\n');
    await c.command('STARTTLS');
    await c.startTls({ ca: certs.ca, servername: 'localhost' });
    await c.command('EHLO c.test');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    c.close();
  });

  it('ends a failed handshake cleanly and keeps serving others', async () => {
    const { port } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert } });
    const c = await RawClient.ehlo(port);
    await c.command('STARTTLS');
    c.write('this is not a TLS ClientHello\r\n');
    await c.closedByServer();
    const d = await RawClient.greeted(port);
    expect(await d.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    d.close();
  });

  it('closes a TLS client that speaks to the plaintext port, and keeps serving others', async () => {
    const { port } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert } });
    const socket = tlsConnect({ port, host: '127.0.0.1', ca: certs.ca, servername: 'localhost' });
    const outcome = await new Promise<string>((resolve) => {
      socket.once('secureConnect', () => resolve('connected'));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      socket.once('close', () => resolve('closed'));
    });
    expect(outcome).not.toBe('connected');
    const d = await RawClient.greeted(port);
    expect(await d.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    d.close();
  });

  it('picks the certificate by SNI from a map', async () => {
    const { port } = await startServer(undefined, {
      tls: { key: certs.key, cert: certs.cert, sni: { 'other.test': { key: certs.otherKey, cert: certs.otherCert } } },
    });
    for (const [servername, cn] of [
      ['other.test', 'other.test'],
      ['localhost', 'localhost'],
    ] as const) {
      const c = await RawClient.ehlo(port);
      await c.command('STARTTLS');
      const secure = await c.startTls({ ca: certs.ca, servername });
      expect(secure.getPeerCertificate().subject.CN).toBe(cn);
      c.close();
    }
  });

  it.each([
    ['signed by the configured CA', 'ca', true],
    ['from a CA the server does not trust', 'otherCert', false],
  ] as const)('shows a client certificate %s to the handler, authorized: %s', async (_what, trusted, authorized) => {
    const sessions: SessionInfo[] = [];
    const { port } = await startServer(sessionRecorder(sessions), {
      tls: { key: certs.key, cert: certs.cert, ca: certs[trusted] },
      requestClientCertificate: true,
    });
    const c = await RawClient.ehlo(port);
    await c.command('STARTTLS');
    await c.startTls({ ca: certs.ca, servername: 'localhost', key: certs.clientKey, cert: certs.clientCert });
    await c.command('EHLO c.test');
    await c.command('MAIL FROM:<a@b.test>');
    expect((sessions[0]?.tls?.clientCertificate as { subject?: { CN?: string } } | undefined)?.subject?.CN).toBe('client.test');
    expect(sessions[0]?.tls?.clientCertificateAuthorized).toBe(authorized);
    c.close();
  });

  it('delivers from nodemailer with requireTLS', async () => {
    const sessions: SessionInfo[] = [];
    const { port } = await startServer(sessionRecorder(sessions), { tls: { key: certs.key, cert: certs.cert }, requireTLS: true });
    const transport = tlsTransport(port, certs.ca, 'starttls');
    const info = await transport.sendMail({ from: 'a@b.test', to: 'c@d.test', text: 'over TLS' });
    transport.close();
    expect(info.response).toMatch(/^250 /);
    expect(sessions[0]?.secure).toBe(true);
  });

  it("delivers from Python's smtplib with starttls()", async () => {
    const sessions: SessionInfo[] = [];
    const { port } = await startServer(sessionRecorder(sessions), { tls: { key: certs.key, cert: certs.cert }, requireTLS: true });
    const out = await runPython(
      `
import os, smtplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(certs.caFile)})
s = smtplib.SMTP('localhost', int(os.environ['PORT']), timeout=10)
s.starttls(context=ctx)
s.sendmail('a@b.test', ['c@d.test'], 'Subject: tls\\r\\n\\r\\nx\\r\\n')
print(s.sock.version())
s.quit()
`,
      port,
    );
    expect(out.trim()).toBe('TLSv1.3');
    expect(sessions[0]?.secure).toBe(true);
  });
});

describe('implicit TLS (SMTPS)', () => {
  it('greets over TLS from the first byte and takes mail', async () => {
    const { port } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert }, implicitTLS: true });
    const c = await RawClient.connectTls(port, { ca: certs.ca, servername: 'localhost' });
    expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await c.command('EHLO c.test')).toBe(EHLO_SECURE);
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    c.close();
  });

  it('closes a plaintext client on the SMTPS port', async () => {
    const { port } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert }, implicitTLS: true, handshakeTimeout: 300 });
    const socket = netConnect(port, '127.0.0.1');
    let closed = false;
    socket.on('error', () => undefined);
    socket.on('close', () => (closed = true));
    socket.write('EHLO c.test\r\n');
    await until(() => closed);
    const c = await RawClient.connectTls(port, { ca: certs.ca, servername: 'localhost' });
    expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    c.close();
  });
});
