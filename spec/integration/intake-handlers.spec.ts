/** The ready handlers on the streaming path: Maildir writing while the message arrives, Relay piping it on with DSN and REQUIRETLS. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Maildir, RequestHandler, SMTPError, type Envelope, type HandlerClass } from '../../lib/index.js';
import { Relay } from '../../lib/entry/outbound.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-intake-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await closeServers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const QUEUED = /^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\r\n$/;

describe('Maildir, streaming', () => {
  it('writes a large message while it arrives and leaves nothing in tmp/', async () => {
    const root = tempDir();
    const { port } = await startServer(Maildir, { maildir: root, maildirTraceHeaders: false, maxMessageSize: 64 * 1024 * 1024 });
    const client = await RawClient.inData(port);
    const line = `${'m'.repeat(998)}\r\n`;
    client.write(line.repeat(8 * 1024));
    client.write('.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    const [name] = readdirSync(join(root, 'new'));
    expect(readFileSync(join(root, 'new', name ?? '')).length).toBe(line.length * 8 * 1024);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('leaves nothing behind for a message too big or a client gone mid-message', async () => {
    const root = tempDir();
    const { port } = await startServer(Maildir, { maildir: root, maxMessageSize: 1000 });
    const big = await RawClient.inData(port);
    big.write(`${'b'.repeat(5000)}\r\n.\r\n`);
    expect(await big.reply()).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    const gone = await RawClient.inData(port);
    gone.write('half\r\n');
    await new Promise((r) => setTimeout(r, 50));
    gone.close();
    await until(() => readdirSync(join(root, 'tmp')).length === 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(readdirSync(join(root, 'new'))).toEqual([]);
  });

  it('under LMTP, delivers per recipient and refuses only the one whose folder fails', async () => {
    const root = tempDir();
    // A file where one recipient's new/ should be: that delivery fails, the others stand.
    mkdirSync(join(root, 'broken@d.test'), { recursive: true });
    writeFileSync(join(root, 'broken@d.test', 'new'), 'not a folder');
    const { port } = await startServer(Maildir, { maildir: root, maildirPerRecipient: true, lmtp: true });
    const client = await RawClient.connect(port);
    await client.reply();
    await client.command('LHLO c.test');
    client.write('MAIL FROM:<a@b.test>\r\nRCPT TO:<Ann@d.test>\r\nRCPT TO:<broken@d.test>\r\nRCPT TO:<bob@d.test>\r\nDATA\r\n');
    for (let i = 0; i < 5; i++) await client.reply();
    client.write('Subject: per recipient\r\n\r\nhi\r\n.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(await client.reply()).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    for (const who of ['ann@d.test', 'bob@d.test']) {
      const [name] = readdirSync(join(root, who, 'new'));
      expect(readFileSync(join(root, who, 'new', name ?? '')).toString()).toContain('Subject: per recipient\r\n');
      expect(readdirSync(join(root, who, 'tmp'))).toEqual([]);
    }
  });
});

// These tests assert the exact bytes the smarthost gets, so the relay's Received field is off here;
// spec/integration/hardening-loops.spec.ts tests it.
describe('Relay, streaming', () => {
  function envelopes(seen: { envelope: Envelope; body: Buffer }[]): HandlerClass {
    return class extends RequestHandler {
      override rcpt(address: string): void {
        if (address.startsWith('no@')) throw new SMTPError(550, [5, 1, 1], 'no such user here');
      }
      override data(): void {
        seen.push({ envelope: this.request.envelope, body: this.request.body });
      }
    };
  }

  it('pipes a large message on, and a message cut short never reaches the smarthost', async () => {
    const seen: { envelope: Envelope; body: Buffer }[] = [];
    const smarthost = await startServer(envelopes(seen), { maxMessageSize: 64 * 1024 * 1024 });
    const relay = await startServer(Relay, {
      relayHost: '127.0.0.1',
      relayPort: smarthost.port,
      relayTraceHeaders: false,
      maxMessageSize: 4 * 1024 * 1024,
    });
    const line = `${'r'.repeat(998)}\r\n`;
    const ok = await RawClient.inData(relay.port);
    ok.write(line.repeat(3 * 1024));
    ok.write('.\r\n');
    expect(await ok.reply()).toMatch(/^250 2\.0\.0 Ok: relayed as /);
    expect(seen[0]?.body.length).toBe(line.length * 3 * 1024);
    const big = await RawClient.inData(relay.port);
    big.write(line.repeat(5 * 1024));
    big.write('.\r\n');
    expect(await big.reply()).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(1);
  });

  it('refuses a message in a mail loop (more Received fields than maxHops) before it reaches the smarthost', async () => {
    const seen: { envelope: Envelope; body: Buffer }[] = [];
    const smarthost = await startServer(envelopes(seen));
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: smarthost.port, relayTraceHeaders: false, maxHops: 2 });
    const looping = await RawClient.inData(relay.port);
    looping.write('Received: from a by b\r\nReceived: from b by a\r\nReceived: from a by b\r\nSubject: loop\r\n\r\nx\r\n.\r\n');
    expect(await looping.reply()).toBe('554 5.4.6 Too many hops: routing loop detected\r\n');
    const fine = await RawClient.inData(relay.port);
    fine.write('Received: from a by b\r\nSubject: fine\r\n\r\nx\r\n.\r\n');
    expect(await fine.reply()).toMatch(/^250 2\.0\.0 Ok: relayed as /);
    expect(seen.map((m) => m.body.toString())).toEqual(['Received: from a by b\r\nSubject: fine\r\n\r\nx\r\n']);
  });

  it('passes a BINARYMIME message on unchanged when it is 8-bit text, and refuses one DATA would change, 554 5.6.3', async () => {
    const seen: { envelope: Envelope; body: Buffer }[] = [];
    const smarthost = await startServer(envelopes(seen));
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: smarthost.port, relayTraceHeaders: false });
    const send = (payload: Buffer): Promise<string> => RawClient.binaryMessage(relay.port, 'a@b.test', 'c@d.test', payload);
    const text = Buffer.from('Subject: text\r\nContent-Transfer-Encoding: binary\r\n\r\n\u00e9t\u00e9\r\n.line\r\n', 'utf8');
    expect(await send(text)).toMatch(/^250 2\.0\.0 Ok: relayed as /);
    const binary = Buffer.concat([
      Buffer.from('Subject: binary\r\n\r\n'),
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x0d, 0x0a]),
    ]);
    expect(await send(binary)).toBe('554 5.6.3 Conversion required but not supported: binary content cannot be passed on\r\n');
    expect(await send(Buffer.from(`Subject: long\r\n\r\n${'x'.repeat(999)}\r\n`))).toMatch(/^554 5\.6\.3 /);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.map((m) => m.body.equals(text))).toEqual([true]);
    expect(seen[0]?.envelope.bodyType).toBe('8BITMIME');
  });

  it('passes DSN parameters on, and bounces honour NOTIFY and RET', async () => {
    const seen: { envelope: Envelope; body: Buffer }[] = [];
    const smarthost = await startServer(envelopes(seen), { dsn: true });
    const relay = await startServer(Relay, {
      hostname: 'relay.test',
      relayHost: '127.0.0.1',
      relayPort: smarthost.port,
      relayTraceHeaders: false,
      dsn: true,
    });
    const client = await RawClient.ehlo(relay.port);
    await client.command('MAIL FROM:<a@b.test> RET=FULL ENVID=env1');
    await client.command('RCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.test');
    await client.command('RCPT TO:<no@d.test> NOTIFY=FAILURE');
    await client.command('RCPT TO:<no@e.test> NOTIFY=NEVER');
    await client.command('DATA');
    expect(await client.command('Subject: dsn\r\n\r\nthe body\r\n.')).toMatch(/^250 /);
    const delivered = seen.find((s) => s.envelope.mailFrom === 'a@b.test');
    expect(delivered?.envelope.dsn).toEqual({ ret: 'FULL', envid: 'env1' });
    expect(delivered?.envelope.rcptDsn).toEqual([{ notify: ['SUCCESS', 'FAILURE'], orcpt: { type: 'rfc822', address: 'c@d.test' } }]);
    await until(() => seen.some((s) => s.envelope.mailFrom === ''));
    const bounce = seen.find((s) => s.envelope.mailFrom === '')?.body.toString() ?? '';
    expect(bounce).toContain('Original-Envelope-Id: env1\r\n');
    expect(bounce).toContain('Final-Recipient: rfc822; no@d.test\r\n');
    expect(bounce).not.toContain('no@e.test');
    expect(bounce).toContain('Content-Type: message/rfc822\r\n\r\nSubject: dsn\r\n\r\nthe body\r\n');
  });

  it('counts a message it keeps whole against bodyMemoryBudget: 452 4.3.1 for a second transaction past it, headers back for RET=FULL', async () => {
    const seen: { envelope: Envelope; body: Buffer }[] = [];
    const smarthost = await startServer(envelopes(seen), { dsn: true });
    const relay = await startServer(Relay, {
      relayTraceHeaders: false,
      hostname: 'relay.test',
      relayHost: '127.0.0.1',
      relayPort: smarthost.port,
      dsn: true,
      bodyMemoryBudget: 64 * 1024,
    });
    const big = `Subject: big\r\n\r\n${'0123456789abcdef'.repeat(64 * 100)}\r\n`;
    // Two sets of RCPT parameters, two transactions: the second one needs the whole message.
    const twice = await RawClient.ehlo(relay.port);
    await twice.command('MAIL FROM:<a@b.test>');
    await twice.command('RCPT TO:<c@d.test> NOTIFY=FAILURE');
    await twice.command('RCPT TO:<e@d.test> NOTIFY=NEVER');
    await twice.command('DATA');
    expect(await twice.command(`${big}.`)).toBe('452 4.3.1 Insufficient system storage, try again later\r\n');
    expect(relay.app.bodyBudget.refusals).toBe(1);
    // RET=FULL within one transaction: relayed, and the bounce returns the header section only.
    const full = await RawClient.ehlo(relay.port);
    await full.command('MAIL FROM:<a@b.test> RET=FULL');
    await full.command('RCPT TO:<c@d.test>');
    await full.command('RCPT TO:<no@d.test>');
    await full.command('DATA');
    expect(await full.command(`${big}.`)).toMatch(/^250 /);
    await until(() => seen.some((m) => m.envelope.mailFrom === ''));
    const bounce = seen.find((m) => m.envelope.mailFrom === '')?.body.toString() ?? '';
    expect(bounce).toContain('Content-Type: text/rfc822-headers');
    expect(bounce).not.toContain('0123456789abcdef');
    expect(seen.filter((m) => m.envelope.mailFrom === 'a@b.test').map((m) => m.body.toString())).toEqual([big]);
    // Within the budget, both transactions go; nothing stays counted.
    const small = await RawClient.ehlo(relay.port);
    await small.command('MAIL FROM:<a@b.test>');
    await small.command('RCPT TO:<c@d.test> NOTIFY=FAILURE');
    await small.command('RCPT TO:<e@d.test> NOTIFY=NEVER');
    await small.command('DATA');
    expect(await small.command('Subject: small\r\n\r\nx\r\n.')).toMatch(/^250 /);
    expect(seen.filter((m) => m.envelope.mailFrom === 'a@b.test').map((m) => m.envelope.rcptTos)).toEqual([
      ['c@d.test'],
      ['c@d.test'],
      ['e@d.test'],
    ]);
    await until(() => relay.app.bodyBudget.held === 0);
  });

  it('refuses a REQUIRETLS message with 5.7.30 when the smarthost offers no TLS', async () => {
    const { makeCertificates } = await import('../helpers/certs.js');
    const certs = makeCertificates();
    try {
      const seen: { envelope: Envelope; body: Buffer }[] = [];
      const smarthost = await startServer(envelopes(seen));
      const relay = await startServer(Relay, {
        relayTraceHeaders: false,
        relayHost: '127.0.0.1',
        relayPort: smarthost.port,
        tls: { key: certs.key, cert: certs.cert },
      });
      const client = await RawClient.ehlo(relay.port);
      await client.command('STARTTLS');
      await client.startTls({ ca: certs.ca, servername: 'localhost' });
      await client.command('EHLO c.test');
      expect(await client.command('MAIL FROM:<a@b.test> REQUIRETLS')).toBe('250 2.1.0 Sender ok\r\n');
      await client.command('RCPT TO:<c@d.test>');
      await client.command('DATA');
      expect(await client.command('x\r\n.')).toBe('550 5.7.30 REQUIRETLS support required\r\n');
      expect(seen).toHaveLength(0);
    } finally {
      certs.cleanup();
    }
  });
});
