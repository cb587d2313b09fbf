/**
 * Delivery over TLS (opportunistic, verified per domain, REQUIRETLS), the one-call client
 * `sendDirect`, Python's aiosmtpd as the receiving exchanger, and who may relay through Relay.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SMTPError, type AuthCredentials, type SettingsInput } from '../../lib/index.js';
import { deliveryQueue, Relay, sendDirect } from '../../lib/entry/outbound.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { plainTransport, tlsTransport } from '../helpers/mailer.js';
import { startFleet, startDeliverer, type Fleet } from '../helpers/outbound.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';

let dns: TestDns;
let certs: TestCertificates;
const cleanups: (() => void | Promise<void>)[] = [];

beforeAll(async () => {
  certs = makeCertificates();
  dns = await startDns({
    // The test certificate names mx.test: the exchanger with TLS is that name.
    'tls.test': { mx: [[10, 'mx.test']] },
    'mx.test': { a: ['127.0.0.3'] },
    'plain.test': { mx: [[10, 'mx.plain.test']] },
    'mx.plain.test': { a: ['127.0.0.2'] },
    // Named otherwise than the certificate: TLS is offered but cannot be verified.
    'misnamed.test': { mx: [[10, 'other-name.test']] },
    'other-name.test': { a: ['127.0.0.3'] },
    'sender.test': { mx: [[10, 'mx.sender.test']] },
    'mx.sender.test': { a: ['127.0.0.5'] },
    'nullmx.test': { mx: 'null' },
    'py.test': { a: ['127.0.0.6'] },
    // The certificate also names localhost: aiosmtpd there has verified TLS and no REQUIRETLS.
    'strict.test': {
      mx: [
        [10, 'localhost'],
        [20, 'mx.test'],
      ],
    },
    'no-requiretls.test': { mx: [[10, 'localhost']] },
    'strict-down.test': {
      mx: [
        [10, 'localhost'],
        [20, 'mx.down.test'],
      ],
    },
    // Nothing listens there.
    'mx.down.test': { a: ['127.0.0.8'] },
    localhost: { a: ['127.0.0.7'] },
  });
});

afterAll(async () => {
  await dns.close();
  certs.cleanup();
});

afterEach(async () => {
  await closeServers();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** 127.0.0.2 without TLS, 127.0.0.3 with the test certificate, 127.0.0.5 the sender's own exchanger. */
async function fleet(): Promise<Fleet> {
  const started = await startFleet('127.0.0.2', {
    refuseRcpt: { 'no@plain.test': new SMTPError(550, [5, 1, 1], 'no such user') },
  });
  cleanups.push(() => started.close());
  await started.add('127.0.0.3', { settings: { tls: { key: certs.key, cert: certs.cert } } });
  await started.add('127.0.0.5');
  return started;
}

async function deliverServer(fleetPort: number, settings: SettingsInput & Record<string, unknown> = {}) {
  return startDeliverer(cleanups, { dns: dns.server, fleetPort, ca: certs.ca }, { tls: { key: certs.key, cert: certs.cert }, ...settings });
}

const bouncesIn = (f: Fleet) => f.arrivals.filter((a) => a.mailFrom === '');

describe('Deliver over TLS', () => {
  it('upgrades with STARTTLS when the exchanger offers it, even with a certificate it cannot verify', async () => {
    const f = await fleet();
    const { port } = await deliverServer(f.port, { deliveryTLS: {} });
    await plainTransport(port).sendMail({ envelope: { from: 'a@sender.test', to: ['b@misnamed.test'] }, raw: 'Subject: x\r\n\r\nx\r\n' });
    await until(() => f.arrivals.length === 1, 10_000);
    expect(f.arrivals[0]).toMatchObject({ exchanger: '127.0.0.3', secure: true, requireTls: false });
  });

  it('passes a REQUIRETLS message on over verified TLS, with REQUIRETLS', async () => {
    const f = await fleet();
    const { port } = await deliverServer(f.port);
    const transport = tlsTransport(port, certs.ca, 'starttls');
    await transport.sendMail({
      envelope: { from: 'a@sender.test', to: ['b@tls.test'] },
      raw: 'Subject: secret\r\n\r\nx\r\n',
      requireTLSExtensionEnabled: true,
    });
    transport.close();
    await until(() => f.arrivals.length === 1, 10_000);
    expect(f.arrivals[0]).toMatchObject({ exchanger: '127.0.0.3', secure: true, requireTls: true, rcptTos: ['b@tls.test'] });
  });

  it('bounces a REQUIRETLS message whose exchanger has no TLS, with 5.7.30', async () => {
    const f = await fleet();
    const { port } = await deliverServer(f.port);
    const transport = tlsTransport(port, certs.ca, 'starttls');
    await transport.sendMail({
      envelope: { from: 'a@sender.test', to: ['b@plain.test'] },
      raw: 'Subject: secret\r\n\r\nx\r\n',
      requireTLSExtensionEnabled: true,
    });
    transport.close();
    await until(() => bouncesIn(f).length === 1, 10_000);
    expect(f.arrivals.filter((a) => a.mailFrom !== '')).toEqual([]);
    const body = bouncesIn(f)[0]?.body ?? '';
    expect(body).toContain('Final-Recipient: rfc822; b@plain.test\r\nAction: failed\r\nStatus: 5.7.30\r\n');
    expect(body).toMatch(
      /Diagnostic-Code: smtp; 550 5\.7\.30 REQUIRETLS support required: mx\.plain\.test \[127\.0\.0\.2\]: no verified TLS/,
    );
  });

  it('keeps mail for a requireTlsDomains domain waiting (4.7.5) while its exchanger has no verified TLS', async () => {
    const f = await fleet();
    const { port, app } = await deliverServer(f.port, { requireTlsDomains: ['plain.test'] });
    await plainTransport(port).sendMail({ envelope: { from: 'a@sender.test', to: ['b@plain.test'] }, raw: 'Subject: x\r\n\r\nx\r\n' });
    let listed: Awaited<ReturnType<ReturnType<typeof deliveryQueue>['list']>> = [];
    const deadline = Date.now() + 10_000;
    while (!listed.some((m) => !m.active && m.entry.attempts === 1) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      listed = await deliveryQueue(app).list();
    }
    expect(listed[0]?.entry.recipients[0]).toMatchObject({ state: 'pending', code: 451, status: '4.7.5' });
    expect(f.arrivals).toEqual([]);
  });
});

describe('sendDirect', () => {
  it('delivers now and reports each recipient: accepted, refused by the exchanger, refused by DNS', async () => {
    const f = await fleet();
    const report = await sendDirect({
      from: 'a@sender.test',
      to: ['yes@plain.test', 'no@plain.test', 'x@nullmx.test'],
      message: 'Subject: direct\r\n\r\nhello\r\n',
      hostname: 'client.test',
      port: f.port,
      dnsServers: [dns.server],
    });
    expect(report.recipients.map((r) => [r.recipient, r.code, r.status])).toEqual([
      ['yes@plain.test', 250, '2.0.0'],
      ['no@plain.test', 550, '5.1.1'],
      ['x@nullmx.test', 550, '5.1.10'],
    ]);
    expect(report.accepted).toEqual(['yes@plain.test']);
    expect(report.failed).toEqual(['no@plain.test', 'x@nullmx.test']);
    expect(report.recipients[1]?.reply).toBe('550 5.1.1 no such user');
    expect(report.log).toContain('plain.test: exchangers mx.plain.test [127.0.0.2]');
    expect(f.arrivals.map((a) => a.rcptTos)).toEqual([['yes@plain.test']]);
  });

  it('says 5.7.30 for a REQUIRETLS message to an exchanger without TLS, and sends nothing', async () => {
    const f = await fleet();
    const report = await sendDirect({
      from: 'a@sender.test',
      to: 'b@plain.test',
      message: 'Subject: x\r\n\r\nx\r\n',
      port: f.port,
      dnsServers: [dns.server],
      requireTls: true,
      connectTimeout: 2000,
    });
    expect(report.recipients[0]).toMatchObject({ code: 550, status: '5.7.30' });
    expect(f.arrivals).toEqual([]);
  });
});

/** Debian's python3 has python3-aiosmtpd (CI installs it); another python3 may not. */
function aiosmtpdPython(): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    if (python.startsWith('/') && !existsSync(python)) continue;
    if (spawnSync(python, ['-c', 'import aiosmtpd'], { timeout: 10_000 }).status === 0) return python;
  }
  return undefined;
}
const python = aiosmtpdPython();
if (python === undefined) console.warn('skipping the aiosmtpd exchanger test: no python3 with aiosmtpd (Debian: python3-aiosmtpd)');

describe.skipIf(python === undefined)('Deliver to aiosmtpd', () => {
  it("delivers to Python's aiosmtpd found as a domain's implicit MX", async () => {
    const f = await fleet();
    const py = await aiosmtpd('127.0.0.6', f.port);
    const { port } = await deliverServer(f.port);
    await plainTransport(port).sendMail({
      envelope: { from: 'a@sender.test', to: ['guido@py.test'] },
      raw: 'Subject: to python\r\n\r\nhello\r\n',
    });
    await until(() => py.output().includes('END MESSAGE'), 10_000);
    const output = py.output();
    // aiosmtpd's Debugging handler prints the message with the peer it came from.
    expect(output).toMatch(/by mta\.test \(Sirocco\) with ESMTP id \w+\n\tfor <guido@py\.test>;/);
    expect(output).toContain("Subject: to python\nX-Peer: ('127.0.0.1', ");
    expect(output).toContain('\nhello\n------------ END MESSAGE');
  });
});

/** Python's aiosmtpd on `address:port` (its Debugging handler prints what it receives); `tls`: STARTTLS with the test certificate, required. */
async function aiosmtpd(address: string, port: number, tls = false): Promise<{ output: () => string }> {
  const args = ['-u', '-m', 'aiosmtpd', '-n', '-l', `${address}:${port}`];
  if (tls) args.push('--tlscert', join(certs.dir, 'server.crt'), '--tlskey', join(certs.dir, 'server.key'));
  const child: ChildProcess = spawn(python ?? 'python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => {
    child.kill('SIGTERM');
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const ready = Date.now() + 10_000;
  for (;;) {
    try {
      (await RawClient.connect(port, address)).close();
      return { output: () => output };
    } catch (err) {
      if (Date.now() > ready) throw new Error(`aiosmtpd did not start: ${output}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Sends one message with REQUIRETLS, over STARTTLS, to the MTA on `port`. */
async function sendRequireTls(port: number, to: string): Promise<void> {
  const transport = tlsTransport(port, certs.ca, 'starttls');
  await transport.sendMail({
    envelope: { from: 'a@sender.test', to: [to] },
    raw: 'Subject: secret\r\n\r\nx\r\n',
    requireTLSExtensionEnabled: true,
  });
  transport.close();
}

describe.skipIf(python === undefined)('REQUIRETLS and exchangers without it (RFC 8689 §4.2.1)', () => {
  it('tries the next exchanger when the first has verified TLS but no REQUIRETLS', async () => {
    const f = await fleet();
    const py = await aiosmtpd('127.0.0.7', f.port, true);
    const { port } = await deliverServer(f.port);
    await sendRequireTls(port, 'b@strict.test');
    await until(() => f.arrivals.length === 1, 10_000);
    expect(f.arrivals[0]).toMatchObject({ exchanger: '127.0.0.3', secure: true, requireTls: true, rcptTos: ['b@strict.test'] });
    expect(py.output()).not.toContain('END MESSAGE');
  });

  it('bounces with 5.7.30 when no exchanger offers REQUIRETLS, having sent nothing', async () => {
    const f = await fleet();
    const py = await aiosmtpd('127.0.0.7', f.port, true);
    const { port } = await deliverServer(f.port);
    await sendRequireTls(port, 'b@no-requiretls.test');
    await until(() => bouncesIn(f).length === 1, 10_000);
    const body = bouncesIn(f)[0]?.body ?? '';
    expect(body).toContain('Final-Recipient: rfc822; b@no-requiretls.test\r\nAction: failed\r\nStatus: 5.7.30\r\n');
    expect(body).toContain('Diagnostic-Code: smtp; 550 5.7.30 REQUIRETLS support required:');
    expect(py.output()).not.toContain('END MESSAGE');
  });

  it('keeps the message waiting, not bounced, when the other exchanger cannot be reached', async () => {
    const f = await fleet();
    const py = await aiosmtpd('127.0.0.7', f.port, true);
    const { port, app } = await deliverServer(f.port, { deliveryConnectTimeout: 2000 });
    await sendRequireTls(port, 'b@strict-down.test');
    let listed: Awaited<ReturnType<ReturnType<typeof deliveryQueue>['list']>> = [];
    const deadline = Date.now() + 10_000;
    while (!listed.some((m) => !m.active && m.entry.attempts === 1) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      listed = await deliveryQueue(app).list();
    }
    expect(listed[0]?.entry.recipients[0]).toMatchObject({ state: 'pending', code: 451, status: '4.4.1' });
    expect(f.arrivals).toEqual([]);
    expect(py.output()).not.toContain('END MESSAGE');
  });

  it('sendDirect tries the next exchanger too, and says so in its log', async () => {
    const f = await fleet();
    await aiosmtpd('127.0.0.7', f.port, true);
    const report = await sendDirect({
      from: 'a@sender.test',
      to: ['b@strict.test'],
      message: 'Subject: secret\r\n\r\nx\r\n',
      requireTls: true,
      dnsServers: [dns.server],
      port: f.port,
      tls: { ca: [certs.ca] },
    });
    expect(report.accepted).toEqual(['b@strict.test']);
    expect(report.log).toContain('strict.test: localhost does not offer REQUIRETLS; trying the other exchangers');
    expect(f.arrivals[0]).toMatchObject({ exchanger: '127.0.0.3', requireTls: true });
  });
});

describe('who may relay', () => {
  const authenticate = (c: AuthCredentials): boolean => c.mechanism === 'PLAIN' && c.username === 'alice' && c.password === 'pw';

  it('Deliver lets an authenticated client send anywhere while untrusted', async () => {
    const f = await fleet();
    const { port } = await deliverServer(f.port, { trustedNetworks: [], authenticate, allowInsecureAuth: true });
    const anonymous = plainTransport(port);
    await expect(anonymous.sendMail({ envelope: { from: 'a@sender.test', to: ['b@plain.test'] }, raw: 'x\r\n' })).rejects.toMatchObject({
      response: '554 5.7.1 Relay access denied',
    });
    const alice = plainTransport(port, { auth: { user: 'alice', pass: 'pw' } });
    expect((await alice.sendMail({ envelope: { from: 'a@sender.test', to: ['b@plain.test'] }, raw: 'x\r\n' })).response).toMatch(/^250 /);
    await until(() => f.arrivals.length === 1, 10_000);
  });

  it('Relay refuses untrusted clients outside relayDomains, and takes its own domains from anyone', async () => {
    const f = await fleet();
    const { port } = await startServer(Relay, {
      relayHost: '127.0.0.5',
      relayPort: f.port,
      trustedNetworks: [],
      relayDomains: ['.plain.test'],
    });
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<a@sender.test>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<b@elsewhere.test>')).toBe('554 5.7.1 Relay access denied\r\n');
    expect(await client.command('RCPT TO:<b@sub.plain.test>')).toMatch(/^250 /);
    client.close();
  });

  it('rejects a trustedNetworks entry that is not an address or CIDR, naming it', async () => {
    await expect(startServer(Relay, { relayHost: 'x.test', trustedNetworks: ['10.0.0.0/33', 'nope'] })).rejects.toThrow(
      'Invalid settings: trustedNetworks: 10.0.0.0/33 has a bad prefix length, nope is not an IP address or CIDR',
    );
  });
});
