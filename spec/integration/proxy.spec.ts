/**
 * The PROXY protocol over real sockets: raw headers with exact bytes, then a real HAProxy in front
 * (Debian's haproxy, started by the test on loopback with a generated configuration).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { makeCertificates } from '../helpers/certs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, traceHeaders, type HandlerClass, type SessionInfo } from '../../lib/index.js';
import { plainTransport } from '../helpers/mailer.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, freePort, startServer, until } from '../helpers/server.js';

afterEach(closeServers);

/** Records each message's Received line and session, as a Maildir would write it. */
function tracing(seen: { received: string; session: SessionInfo }[]): HandlerClass {
  return class extends RequestHandler {
    override data(): void {
      seen.push({ received: traceHeaders(this.request, 'mx.test').split('\r\n')[1] ?? '', session: this.request.session });
    }
  };
}

const V1 = 'PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\n';

describe('PROXY protocol from a trusted proxy', () => {
  it('greets the client the header names, and that client is the one in Received and the hooks', async () => {
    const seen: { received: string; session: SessionInfo }[] = [];
    const connects: SessionInfo[] = [];
    const { port } = await startServer(tracing(seen), { proxyFrom: ['127.0.0.0/8'], onConnect: (s) => void connects.push(s) });
    const client = await RawClient.connect(port);
    client.write(`${V1}EHLO c.test\r\n`);
    expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await client.reply()).toMatch(/^250-mx\.test greets c\.test\r\n/);
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    await client.command('DATA');
    expect(await client.command('x\r\n.')).toMatch(/^250 /);
    expect(connects[0]).toMatchObject({ remoteAddress: '192.0.2.7', remotePort: 51234, proxy: { version: 1, proxyAddress: '127.0.0.1' } });
    expect(seen[0]?.received).toMatch(/^Received: from c\.test \(\[192\.0\.2\.7\]\)/);
  });

  it('closes without a banner when the header is missing, malformed or late', async () => {
    const { port } = await startServer(RequestHandler, { proxyFrom: ['127.0.0.1'], proxyTimeout: 200 });
    const late = await RawClient.connect(port);
    expect(await late.closedByServer()).toBe('');
    const missing = await RawClient.connect(port);
    missing.write('EHLO c.test\r\n');
    expect(await missing.closedByServer()).toBe('');
    const malformed = await RawClient.connect(port);
    malformed.write('PROXY TCP4 192.0.2.700 10.0.0.1 1 25\r\n');
    expect(await malformed.closedByServer()).toBe('');
  });

  it('gives a v2 LOCAL header (a health check) a session as an unknown client, not as the proxy', async () => {
    const connects: SessionInfo[] = [];
    const { port } = await startServer(RequestHandler, { proxyFrom: ['127.0.0.1'], onConnect: (s) => void connects.push(s) });
    const client = await RawClient.connect(port);
    client.write(Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex'));
    expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await client.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    expect(connects[0]).toMatchObject({ remoteAddress: '', proxy: { version: 2, command: 'LOCAL', proxyAddress: '127.0.0.1' } });
  });

  it('serves a peer outside proxyFrom directly, and closes it if it sends a PROXY header', async () => {
    const { port } = await startServer(RequestHandler, { proxyFrom: ['127.0.0.1/32'] });
    const direct = await RawClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(await direct.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await direct.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    const forged = await RawClient.connect(port, '127.0.0.1', '127.0.0.3');
    expect(await forged.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    forged.write(V1);
    expect(await forged.closedByServer()).toBe('');
  });

  it('reads the header before the TLS handshake under implicitTLS, in the same read or not', async () => {
    const certs = makeCertificates();
    try {
      const connects: SessionInfo[] = [];
      const { port } = await startServer(RequestHandler, {
        proxyFrom: ['127.0.0.1'],
        implicitTLS: true,
        tls: { key: certs.key, cert: certs.cert },
        onConnect: (s) => void connects.push(s),
      });
      for (const together of [false, true]) {
        const raw = connect(port, '127.0.0.1');
        await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
        // Corked, the header and the ClientHello leave in one write.
        if (together) raw.cork();
        raw.write(`PROXY TCP4 192.0.2.${together ? 9 : 8} 10.0.0.1 51234 465\r\n`);
        const secure = tlsConnect({ socket: raw, ca: certs.ca, servername: 'localhost' });
        if (together) process.nextTick(() => raw.uncork());
        const greeting = await new Promise<string>((resolve, reject) => {
          secure.once('data', (d: Buffer) => resolve(d.toString()));
          secure.once('error', reject);
        });
        expect(greeting).toBe('220 mx.test ESMTP Sirocco\r\n');
        secure.destroy();
      }
      expect(connects.map((s) => [s.remoteAddress, s.secure])).toEqual([
        ['192.0.2.8', true],
        ['192.0.2.9', true],
      ]);
    } finally {
      certs.cleanup();
    }
  });

  it('refuses a proxyFrom entry that is not an address or CIDR, naming it', async () => {
    await expect(startServer(RequestHandler, { proxyFrom: ['10.0.0.0/33', 'mx.example.com'] })).rejects.toThrow(
      'Invalid settings: proxyFrom: 10.0.0.0/33 has a bad prefix length, mx.example.com is not an IP address or CIDR',
    );
  });
});

const haproxyMissing = existsSync('/usr/sbin/haproxy') ? undefined : "Debian's haproxy is not installed";
if (haproxyMissing !== undefined) console.log(`proxy: the HAProxy tests skipped: ${haproxyMissing}`);

describe.skipIf(haproxyMissing !== undefined)('behind a real HAProxy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-haproxy-'));
  let haproxy: ChildProcess | undefined;
  let output = '';

  afterAll(async () => {
    if (haproxy?.pid !== undefined && haproxy.exitCode === null) {
      const exited = new Promise((r) => haproxy?.once('exit', r));
      process.kill(haproxy.pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes the client on with send-proxy and send-proxy-v2, and its tcp-check health check gets a session', async () => {
    const seen: { received: string; session: SessionInfo }[] = [];
    const connects: SessionInfo[] = [];
    const { port } = await startServer(tracing(seen), { proxyFrom: ['127.0.0.1'], onConnect: (s) => void connects.push(s) });
    const [v1Port, v2Port] = [await freePort(), await freePort()];
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(
      config,
      [
        'global',
        '  maxconn 100',
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 30s',
        '  timeout server 30s',
        `frontend v1`,
        `  bind 127.0.0.1:${v1Port}`,
        '  default_backend sirocco_v1',
        `frontend v2`,
        `  bind 127.0.0.1:${v2Port}`,
        '  unique-id-format %{+X}o%ci-%cp-%rt',
        '  default_backend sirocco_v2',
        'backend sirocco_v1',
        `  server s 127.0.0.1:${port} send-proxy`,
        'backend sirocco_v2',
        '  option tcp-check',
        '  tcp-check expect string 220',
        '  tcp-check send QUIT\\r\\n',
        '  tcp-check expect string 221',
        `  server s 127.0.0.1:${port} send-proxy-v2 proxy-v2-options unique-id check check-send-proxy inter 300ms`,
        '',
      ].join('\n'),
    );
    haproxy = spawn('/usr/sbin/haproxy', ['-db', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    haproxy.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    // HAProxy's health check: a LOCAL header, a 220, QUIT.
    await until(() => connects.some((s) => s.proxy?.command === 'LOCAL') || haproxy?.exitCode !== null, 10_000);
    expect(haproxy.exitCode, output).toBeNull();
    expect(connects.find((s) => s.proxy?.command === 'LOCAL')).toMatchObject({
      remoteAddress: '',
      proxy: { version: 2, proxyAddress: '127.0.0.1' },
    });

    for (const [frontend, version, from] of [
      [v1Port, 1, '127.0.0.2'],
      [v2Port, 2, '127.0.0.3'],
    ] as const) {
      const transport = plainTransport(frontend, { localAddress: from });
      await transport.sendMail({ from: 'a@b.test', to: 'c@d.test', subject: `via v${version}`, text: 'hi' });
      transport.close();
      const message = seen.at(-1);
      expect(message?.session).toMatchObject({ remoteAddress: from, proxy: { version, command: 'PROXY', proxyAddress: '127.0.0.1' } });
      expect(message?.received).toMatch(new RegExp(`\\(\\[${from.replace(/\./g, '\\.')}\\]\\)`));
    }
    // unique-id-format in hex: the client address 127.0.0.3, its port, a request counter.
    expect(seen.at(-1)?.session.proxy?.uniqueId?.toString()).toMatch(/^7F000003-[0-9A-F]+-[0-9A-F]+$/);
  });
});
