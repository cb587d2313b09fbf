/**
 * DKIM signing on the way out: sendDirect signs with the From: domain's keys (RSA and Ed25519 at
 * once); the signatures verify in dkimpy and in Sirocco's own mail authentication, and a changed
 * body fails in both; OpenDKIM verifies them too (in a namespace of its own, where the test DNS
 * is on port 53), and a message OpenDKIM signed verifies in Sirocco. DNS on loopback.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { Deliver, DkimSigner, Relay, sendDirect } from '../../lib/entry/outbound.js';
import { closeServers, startServer } from '../helpers/server.js';
import { Controller } from '../../lib/entry/testing.js';
import {
  dkimpyArcVerify,
  dkimpyMissing,
  dkimpyVerify,
  ed25519Key,
  opendkimMissing,
  opendkimVerify,
  rsaKey,
  type TestKey,
} from '../helpers/dkim.js';
import { startDns, type TestDns } from '../helpers/dns.js';

const missing = dkimpyMissing();
if (missing !== undefined) console.log(`dkim-sign.spec: skipped: ${missing}`);
const OPENDKIM = '/usr/sbin/opendkim-testmsg';

let dns: TestDns;
let rsa: TestKey;
let ed: TestKey;
let receiver: Controller;
let dir: string;

beforeAll(async () => {
  rsa = rsaKey();
  ed = ed25519Key();
  dir = mkdtempSync(join(tmpdir(), 'sirocco-dkim-'));
  dns = await startDns({
    'dest.test': { mx: [[10, 'mx.dest.test']] },
    'mx.dest.test': { a: ['127.0.0.1'] },
    'example.test': { txt: ['v=spf1 -all'] },
    '_dmarc.example.test': { txt: ['v=DMARC1; p=reject'] },
    'rsa._domainkey.example.test': { txt: [rsa.record] },
    'ed._domainkey.example.test': { txt: [ed.record] },
  });
  receiver = new Controller(RequestHandler, {
    inbox: true,
    settings: { mailAuth: true, dnsServers: [dns.server], authservId: 'mx.dest.test' },
  });
  await receiver.start();
});
afterAll(async () => {
  await receiver.stop();
  await dns.close();
  rmSync(dir, { recursive: true, force: true });
});

const MESSAGE =
  'From: Ann <ann@news.example.test>\r\nTo: bob@dest.test\r\nSubject: Signed\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n' +
  'Message-ID: <1@news.example.test>\r\n\r\nHello, signed.\r\n';

describe.skipIf(missing !== undefined)('DKIM signing', () => {
  it('sendDirect signs with both keys of the From: domain; dkimpy and Sirocco verify, a changed body or header fails in both', async () => {
    writeFileSync(join(dir, 'rsa.pem'), rsa.pem);
    const report = await sendDirect({
      from: 'bounce@example.test',
      to: 'bob@dest.test',
      message: MESSAGE,
      hostname: 'out.example.test',
      port: receiver.port,
      dnsServers: [dns.server],
      dkim: [
        { domain: 'example.test', selector: 'rsa', keyFile: join(dir, 'rsa.pem') },
        { domain: 'example.test', selector: 'ed', privateKey: ed.pem },
      ],
    });
    expect(report.accepted).toEqual(['bob@dest.test']);
    const caught = await receiver.inbox.waitFor({ subject: 'Signed' });
    const signatures = caught.raw
      .toString()
      .split('\r\n')
      .filter((line) => line.startsWith('DKIM-Signature:'));
    expect(signatures.map((line) => /a=([\w-]+)/.exec(line)?.[1])).toEqual(['ed25519-sha256', 'rsa-sha256']);
    // Sirocco's own verdict, as the receiving side wrote it.
    expect(caught.headers.get('authentication-results')).toMatch(
      /^mx\.dest\.test; dkim=pass header\.i=@example\.test header\.s=ed .*dkim=pass header\.i=@example\.test header\.s=rsa .*dmarc=pass/,
    );
    const records = { 'rsa._domainkey.example.test': rsa.record, 'ed._domainkey.example.test': ed.record };
    const sent = caught.raw.subarray(caught.raw.indexOf('DKIM-Signature:'));
    expect(await dkimpyVerify(sent, records)).toEqual([true, true]);
    const changed = Buffer.from(sent.toString().replace('Hello, signed.', 'Hello, changed.'));
    expect(await dkimpyVerify(changed, records)).toEqual([false, false]);
    const again = await sendDirect({
      from: 'bounce@example.test',
      to: 'bob@dest.test',
      message: changed,
      hostname: 'out.example.test',
      port: receiver.port,
      dnsServers: [dns.server],
    });
    expect(again.accepted).toEqual(['bob@dest.test']);
    const refused = await receiver.inbox.waitFor((m) => m.text.includes('changed'));
    expect(refused.headers.get('authentication-results')).toMatch(/dkim=neutral \(body hash did not verify\).*dmarc=fail/);
    // A signed header field changed: fails in both too.
    const retitled = Buffer.from(sent.toString().replace('Subject: Signed', 'Subject: Retitled'));
    expect(await dkimpyVerify(retitled, records)).toEqual([false, false]);
    await sendDirect({
      from: 'bounce@example.test',
      to: 'bob@dest.test',
      message: retitled,
      hostname: 'out.example.test',
      port: receiver.port,
      dnsServers: [dns.server],
    });
    const forged = await receiver.inbox.waitFor({ subject: 'Retitled' });
    expect(forged.headers.get('authentication-results')).toMatch(/^mx\.dest\.test; dkim=fail .*dkim=fail .*dmarc=fail/);
  });

  it('Deliver signs each message when it is queued, and sends the signatures on top of the queued bytes', async () => {
    const queueDir = mkdtempSync(join(tmpdir(), 'sirocco-dkim-queue-'));
    try {
      const { port } = await startServer(Deliver, {
        hostname: 'out.example.test',
        queueDir,
        dnsServers: [dns.server],
        deliveryPort: receiver.port,
        retrySchedule: [3600],
        queueScanInterval: 100,
        trustedNetworks: ['127.0.0.1/32'],
        mailAuth: true,
        dkimKeys: [
          { domain: 'example.test', selector: 'ed', privateKey: ed.pem },
          { domain: 'example.test', selector: 'rsa', privateKey: rsa.pem },
        ],
      });
      const before = new Set(receiver.inbox.messages.map((m) => m.id));
      const client = (await import('nodemailer')).default.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
      await client.sendMail({ envelope: { from: 'bounce@example.test', to: ['bob@dest.test'] }, raw: MESSAGE.replace('Signed', 'Queued') });
      client.close();
      const caught = await receiver.inbox.waitFor((m) => !before.has(m.id) && m.subject === 'Queued', { timeout: 10_000 });
      expect(caught.headers.get('authentication-results')).toMatch(
        /^mx\.dest\.test; dkim=pass header\.i=@example\.test header\.s=rsa .*dkim=pass header\.i=@example\.test header\.s=ed .*dmarc=pass/,
      );
      const records = { 'rsa._domainkey.example.test': rsa.record, 'ed._domainkey.example.test': ed.record };
      expect(await dkimpyVerify(caught.raw.subarray(caught.raw.indexOf('DKIM-Signature:')), records)).toEqual([true, true]);
      // Deliver verified the message it took in and sent its verdict on top (mailAuth): SPF of
      // example.test refuses 127.0.0.1, so with dmarcEnforce a second message is refused.
      const rawText = caught.raw.toString();
      expect(rawText.indexOf('Authentication-Results: out.example.test;')).toBeGreaterThan(0);
      expect(rawText.indexOf('Authentication-Results: out.example.test;')).toBeLessThan(rawText.indexOf('DKIM-Signature:'));
      const strict = await startServer(Deliver, {
        hostname: 'out.example.test',
        queueDir,
        dnsServers: [dns.server],
        deliveryPort: receiver.port,
        trustedNetworks: ['127.0.0.1/32'],
        mailAuth: true,
        dmarcEnforce: true,
      });
      const refusing = (await import('nodemailer')).default.createTransport({ host: '127.0.0.1', port: strict.port, ignoreTLS: true });
      await expect(
        refusing.sendMail({ envelope: { from: 'bounce@example.test', to: ['bob@dest.test'] }, raw: MESSAGE.replace('Signed', 'Refused') }),
      ).rejects.toThrow('550 5.7.1 Message refused: it fails the DMARC policy of example.test');
      refusing.close();
      await expect(startServer(Deliver, { queueDir, dkimKeys: [{ domain: 'example.test', selector: 's' }] })).rejects.toThrow(
        'dkimKeys[0]: give privateKey or keyFile, one of them',
      );
    } finally {
      await closeServers();
      rmSync(queueDir, { recursive: true, force: true });
    }
  });

  it('Relay signs once it has the whole message, and sends the signed bytes to the smarthost', async () => {
    const { port } = await startServer(Relay, {
      hostname: 'relay.example.test',
      relayHost: '127.0.0.1',
      relayPort: receiver.port,
      dkimKeys: [{ domain: 'example.test', selector: 'ed', privateKey: ed.pem }],
    });
    const before = new Set(receiver.inbox.messages.map((m) => m.id));
    const client = (await import('nodemailer')).default.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
    await client.sendMail({ envelope: { from: 'bounce@example.test', to: ['bob@dest.test'] }, raw: MESSAGE.replace('Signed', 'Relayed') });
    client.close();
    const caught = await receiver.inbox.waitFor((m) => !before.has(m.id) && m.subject === 'Relayed');
    expect(caught.headers.get('authentication-results')).toMatch(/^mx\.dest\.test; dkim=pass header\.i=@example\.test header\.s=ed /);
    const records = { 'ed._domainkey.example.test': ed.record };
    expect(await dkimpyVerify(caught.raw.subarray(caught.raw.indexOf('DKIM-Signature:')), records)).toEqual([true]);
    await closeServers();
  });

  it('Relay seals with ARC what it verified (arcSeal): the next hop and dkimpy find the chain valid', async () => {
    const { port } = await startServer(Relay, {
      hostname: 'relay.example.test',
      relayHost: '127.0.0.1',
      relayPort: receiver.port,
      mailAuth: true,
      dnsServers: [dns.server],
      arcSeal: { domain: 'example.test', selector: 'rsa', privateKey: rsa.pem },
    });
    const before = new Set(receiver.inbox.messages.map((m) => m.id));
    const client = (await import('nodemailer')).default.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
    await client.sendMail({ envelope: { from: 'bounce@example.test', to: ['bob@dest.test'] }, raw: MESSAGE.replace('Signed', 'Sealed') });
    client.close();
    const caught = await receiver.inbox.waitFor((m) => !before.has(m.id) && m.subject === 'Sealed');
    expect(caught.headers.get('authentication-results')).toContain(
      ' arc=pass (i=1 spf=fail dkim=none dmarc=fail fromdomain=example.test);',
    );
    const forwarded = caught.raw.subarray(caught.raw.indexOf('ARC-Seal:'));
    expect(forwarded.toString().startsWith('ARC-Seal: i=1; a=rsa-sha256; t=')).toBe(true);
    expect(await dkimpyArcVerify(forwarded, { 'rsa._domainkey.example.test': rsa.record })).toBe('pass');
    // Under the ARC set, the relay's own verdict (RFC 8601), as the next hop may read it.
    const fields = forwarded.toString('latin1').split(/\r\n(?![ \t])/);
    expect(fields.slice(0, 4).map((f) => f.slice(0, f.indexOf(':')))).toEqual([
      'ARC-Seal',
      'ARC-Message-Signature',
      'ARC-Authentication-Results',
      'Authentication-Results',
    ]);
    expect(fields[3]).toMatch(/^Authentication-Results: relay\.example\.test;\r\n dkim=none \(message not signed\);\r\n spf=fail /);
    await closeServers();
    await expect(
      startServer(Relay, { relayHost: '127.0.0.1', arcSeal: { domain: 'example.test', selector: 'ed', privateKey: ed.pem } }),
    ).rejects.toThrow('arcSeal: arcSeal: the key must be RSA (ARC seals with rsa-sha256)');
  });

  it('leaves mail from a domain without keys unsigned, and names a bad key', async () => {
    const signer = new DkimSigner([{ domain: 'example.test', selector: 'rsa', privateKey: rsa.pem }]);
    const other = Buffer.from('From: x@elsewhere.test\r\n\r\nhi\r\n');
    expect(await signer.sign(other)).toBe(other);
    expect(() => new DkimSigner([{ domain: 'example.test', selector: 'bad selector', privateKey: rsa.pem }])).toThrow(
      'dkimKeys[0].selector must be a selector (letters, digits, - and _), got "bad selector"',
    );
    expect(() => new DkimSigner([{ domain: 'example.test', selector: 's', keyFile: join(dir, 'none.pem') }])).toThrow(
      /^dkimKeys\[0\]\.keyFile cannot be read: ENOENT/,
    );
    expect(() => new DkimSigner([{ domain: 'example.test', selector: 's', privateKey: 'not a key' }])).toThrow(
      /^dkimKeys\[0\]\.privateKey: /,
    );
    expect(() => new DkimSigner([{ domain: 'example.test', selector: 's', privateKey: rsa.pem, headers: ['subject'] }])).toThrow(
      'dkimKeys[0].headers must be a list of field names with from in it (RFC 6376 §5.4)',
    );
  });

  it("Sirocco's signatures verify in OpenDKIM (opendkim-testmsg), RSA and Ed25519 each; a changed body or header fails", async (context) => {
    const why = await opendkimMissing();
    if (why !== undefined) {
      console.log(`dkim-sign.spec: OpenDKIM verification skipped: ${why}`);
      context.skip();
    }
    const records = { 'rsa._domainkey.example.test': rsa.record, 'ed._domainkey.example.test': ed.record };
    const message = Buffer.from(MESSAGE.replace('Signed', 'For OpenDKIM'));
    for (const [selector, key] of [
      ['rsa', rsa],
      ['ed', ed],
    ] as const) {
      const signed = await new DkimSigner([{ domain: 'example.test', selector, privateKey: key.pem }]).sign(message);
      expect(signed.toString().startsWith(`DKIM-Signature: v=1; a=${key.algorithm}-sha256;`)).toBe(true);
      expect(await opendkimVerify(signed, records)).toBe('pass');
      const changed = Buffer.from(signed.toString().replace('Hello, signed.', 'Hello, changed.'));
      expect(await opendkimVerify(changed, records)).toBe('opendkim-testmsg: dkim_eom(): Bad signature');
      const retitled = Buffer.from(signed.toString().replace('Subject: For OpenDKIM', 'Subject: Retitled'));
      expect(await opendkimVerify(retitled, records)).toBe('opendkim-testmsg: dkim_eom(): Bad signature');
    }
  }, 60_000);

  it.skipIf(process.platform !== 'linux')('verifies a message OpenDKIM signed (opendkim-testmsg, RSA)', async () => {
    const { existsSync } = await import('node:fs');
    if (!existsSync(OPENDKIM)) {
      console.log(`dkim-sign.spec: OpenDKIM case skipped: no ${OPENDKIM} (Debian: opendkim-tools)`);
      return;
    }
    writeFileSync(join(dir, 'rsa.key'), rsa.pem);
    const signed = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        OPENDKIM,
        ['-C', '-d', 'example.test', '-s', 'rsa', '-k', join(dir, 'rsa.key')],
        { timeout: 10_000 },
        (err, out) => (err ? reject(new Error(err.message)) : resolve(out)),
      );
      child.stdin?.end(MESSAGE);
    });
    expect(signed).toMatch(/^DKIM-Signature: /);
    const before = new Set(receiver.inbox.messages.map((m) => m.id));
    const client = (await import('nodemailer')).default.createTransport({ host: '127.0.0.1', port: receiver.port, ignoreTLS: true });
    await client.sendMail({ envelope: { from: 'bounce@example.test', to: ['bob@dest.test'] }, raw: signed.replace(/\r?\n/g, '\r\n') });
    client.close();
    const caught = await receiver.inbox.waitFor((m) => !before.has(m.id));
    expect(caught.raw.toString()).toContain('\r\nDKIM-Signature: ');
    expect(caught.headers.get('authentication-results')).toMatch(/dkim=pass header\.i=@example\.test header\.s=rsa/);
  });
});
