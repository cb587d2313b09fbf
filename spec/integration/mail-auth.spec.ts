/**
 * Mail authentication on the way in (the `mailAuth` setting): SPF, DKIM (signed by dkimpy, RSA and
 * Ed25519), DMARC and its enforcement, our own Authentication-Results fields removed, and a DNS
 * that never answers, all against a DNS server on loopback.
 */
import { afterAll, beforeAll, afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Maildir, RequestHandler, type HandlerClass, type MessageAuthentication } from '../../lib/index.js';
import { Controller } from '../../lib/entry/testing.js';
import { dkimpyArcSeal, dkimpyMissing, dkimpySign, dkimpyVerify, ed25519Key, rsaKey, type TestKey } from '../helpers/dkim.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

const missing = dkimpyMissing();
if (missing !== undefined) console.log(`mail-auth.spec: dkimpy cases skipped: ${missing}`);

let dns: TestDns;
let rsa: TestKey;
let ed: TestKey;
let arcKey: TestKey;

beforeAll(async () => {
  rsa = rsaKey();
  ed = ed25519Key();
  arcKey = rsaKey();
  dns = await startDns({
    'good.test': { txt: ['v=spf1 ip4:127.0.0.1 -all'] },
    '_dmarc.good.test': { txt: ['v=DMARC1; p=reject'] },
    'rsa._domainkey.good.test': { txt: [rsa.record] },
    'ed._domainkey.good.test': { txt: [ed.record] },
    'bad.test': { txt: ['v=spf1 ip4:192.0.2.1 -all'] },
    '_dmarc.bad.test': { txt: ['v=DMARC1; p=reject'] },
    'held.test': { txt: ['v=spf1 ip4:192.0.2.1 -all'] },
    '_dmarc.held.test': { txt: ['v=DMARC1; p=quarantine'] },
    'silent.test': { fail: 'silence' },
    'arc._domainkey.fwd.test': { txt: [arcKey.record] },
  });
});
afterAll(() => dns.close());
afterEach(closeServers);

/** What a handler saw: the verdict, and the body it was given. */
interface Seen {
  auth: MessageAuthentication | undefined;
  body: string;
}

function buffered(seen: Seen[]): HandlerClass {
  return class Looking extends RequestHandler {
    override data(): void {
      seen.push({ auth: this.request.authentication, body: this.request.body.toString() });
    }
  };
}

function streaming(seen: Seen[]): HandlerClass {
  return class Streaming extends RequestHandler {
    static override streaming = true;
    override async data(): Promise<void> {
      const parts: Buffer[] = [];
      for await (const part of this.request.stream) parts.push(part as Buffer);
      const auth = await this.request.authenticated();
      seen.push({ auth, body: Buffer.concat(parts).toString() });
    }
  };
}

/** Sends `message` (CRLF lines) from `from` over a raw client; resolves to the final reply line. */
async function send(port: number, from: string, message: Buffer | string): Promise<string> {
  const client = await RawClient.ehlo(port);
  expect(await client.command(`MAIL FROM:<${from}>`)).toMatch(/^250 /);
  expect(await client.command('RCPT TO:<rcpt@mx.test>')).toMatch(/^250 /);
  expect(await client.command('DATA')).toMatch(/^354 /);
  const text = Buffer.isBuffer(message) ? message.toString('latin1') : message;
  const reply = await client.command(`${text.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, '')}\r\n.`);
  client.close();
  return reply;
}

const message = (from: string, extra = ''): Buffer =>
  Buffer.from(
    `${extra}From: Ann <ann@${from}>\r\nTo: rcpt@mx.test\r\nSubject: Hello\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\nHello there.\r\n`,
  );

const settings = () => ({ mailAuth: true, dnsServers: [dns.server], authservId: 'mx.test' });

const pass = (selector: string, algorithm: string) => ({
  result: 'pass',
  domain: 'good.test',
  selector,
  algorithm,
  aligned: true,
  reason: '',
});

/** The field's lines, the b= tags (which change with each signature) cut. */
const lines = (header: string | undefined): string[] =>
  (header ?? '').split('\r\n').map((line) => line.replace(/header\.b=("?)[\w+/]+\1/, 'header.b=…'));

describe('mail authentication on the way in', () => {
  it.skipIf(missing !== undefined)(
    'verifies SPF, two DKIM signatures by dkimpy (RSA and Ed25519) and DMARC, as typed data and an Authentication-Results field',
    async () => {
      const signed = await dkimpySign(message('good.test'), 'good.test', [
        { selector: 'rsa', key: rsa },
        { selector: 'ed', key: ed },
      ]);
      // dkimpy itself agrees with its own signatures.
      const records = { 'rsa._domainkey.good.test': rsa.record, 'ed._domainkey.good.test': ed.record };
      expect(await dkimpyVerify(signed, records)).toEqual([true, true]);
      for (const handler of [buffered, streaming]) {
        const seen: Seen[] = [];
        const { port } = await startServer(handler(seen), settings());
        expect(await send(port, 'ann@good.test', signed)).toMatch(/^250 2\.0\.0 /);
        const [{ auth }] = seen as [Seen];
        expect({ ...auth, header: lines(auth?.header) }).toEqual({
          spf: { result: 'pass', domain: 'good.test', reason: 'mx.test: domain of ann@good.test designates 127.0.0.1 as permitted sender' },
          dkim: [pass('ed', 'ed25519-sha256'), pass('rsa', 'rsa-sha256')],
          dmarc: { result: 'pass', domain: 'good.test', policy: 'reject', reason: 'p=REJECT arc=none' },
          arc: { result: 'none', instance: 0, reason: '' },
          quarantine: false,
          arcSet: '',
          header: [
            'Authentication-Results: mx.test;',
            ' dkim=pass header.i=@good.test header.s=ed header.a=ed25519-sha256 header.b=…;',
            ' dkim=pass header.i=@good.test header.s=rsa header.a=rsa-sha256 header.b=…;',
            ' spf=pass (mx.test: domain of ann@good.test designates 127.0.0.1 as permitted sender) smtp.mailfrom=ann@good.test smtp.helo=c.test;',
            ' dmarc=pass (p=REJECT arc=none) header.from=good.test header.d=good.test',
            '',
          ],
        });
      }
    },
  );

  it.skipIf(missing !== undefined)(
    'fails a signature over a changed body; with dmarcEnforce a DMARC failure under p=reject is refused 550 5.7.1 after the dot',
    async () => {
      const signed = await dkimpySign(message('bad.test'), 'good.test', [{ selector: 'rsa', key: rsa }]);
      const changed = Buffer.from(signed.toString().replace('Hello there.', 'Hello there!'));
      const seen: Seen[] = [];
      const reported = await startServer(buffered(seen), settings());
      expect(await send(reported.port, 'ann@bad.test', changed)).toMatch(/^250 2\.0\.0 /);
      const [{ auth }] = seen as [Seen];
      expect(auth?.spf.result).toBe('fail');
      // As the large mailbox providers say it: the signature stands, the body it covered does not.
      expect(auth?.dkim.map((d) => [d.result, d.domain, d.aligned, d.reason])).toEqual([
        ['neutral', 'good.test', false, 'body hash did not verify'],
      ]);
      expect(auth?.dmarc).toEqual({ result: 'fail', domain: 'bad.test', policy: 'reject', reason: 'p=REJECT arc=none' });
      for (const handler of [buffered, streaming]) {
        const refused: Seen[] = [];
        const { port } = await startServer(handler(refused), { ...settings(), dmarcEnforce: true });
        expect(await send(port, 'ann@bad.test', changed)).toBe('550 5.7.1 Message refused: it fails the DMARC policy of bad.test\r\n');
        expect(refused).toEqual([]);
      }
    },
  );

  it.skipIf(missing !== undefined)('validates an ARC chain sealed by dkimpy, and fails it once the message changes', async () => {
    // A forwarder (fwd.test) authenticated the message, recorded it, and sealed: the SPF of its
    // own hop to us then fails, and the chain says what it saw.
    const received = Buffer.concat([
      Buffer.from('Authentication-Results: fwd.test; spf=pass smtp.mailfrom=ann@good.test\r\n'),
      message('good.test'),
    ]);
    const sealed = await dkimpyArcSeal(received, 'fwd.test', 'arc', arcKey, 'fwd.test');
    const seen: Seen[] = [];
    const { port } = await startServer(buffered(seen), settings());
    expect(await send(port, 'list@bad.test', sealed)).toMatch(/^250 2\.0\.0 /);
    expect(await send(port, 'list@bad.test', Buffer.from(sealed.toString().replace('Hello there.', 'Hello, changed.')))).toMatch(/^250 /);
    const [first, second] = seen as [Seen, Seen];
    expect([first.auth?.spf.result, first.auth?.arc.result, first.auth?.arc.instance]).toEqual(['fail', 'pass', 1]);
    expect(lines(first.auth?.header).slice(3)).toEqual([
      ' arc=pass (i=1 spf=pass);',
      ' dmarc=fail (p=REJECT arc=pass) header.from=good.test header.d=good.test',
      '',
    ]);
    expect([second.auth?.arc.result, second.auth?.arc.instance]).toEqual(['fail', 1]);
  });

  it('marks a DMARC failure under p=quarantine, and accepts it', async () => {
    const seen: Seen[] = [];
    const { port } = await startServer(buffered(seen), { ...settings(), dmarcEnforce: true });
    expect(await send(port, 'ann@held.test', message('held.test'))).toMatch(/^250 2\.0\.0 /);
    const [{ auth }] = seen as [Seen];
    expect([auth?.spf.result, auth?.dmarc.result, auth?.dmarc.policy, auth?.quarantine]).toEqual(['fail', 'fail', 'quarantine', true]);
  });

  it('removes an Authentication-Results field that carries our authserv-id, and keeps one of another host', async () => {
    const forged =
      'Authentication-Results: mx.test; dkim=pass header.d=good.test; dmarc=pass\r\n' +
      'Authentication-Results: (comment) MX.TEST;\r\n spf=pass\r\n' +
      'Authentication-Results: upstream.example; spf=pass smtp.mailfrom=ann@good.test\r\n';
    for (const handler of [buffered, streaming]) {
      const seen: Seen[] = [];
      const { port } = await startServer(handler(seen), settings());
      expect(await send(port, 'ann@good.test', message('good.test', forged))).toMatch(/^250 2\.0\.0 /);
      const [{ body, auth }] = seen as [Seen];
      expect(body.split('\r\n').slice(0, 2)).toEqual([
        'Authentication-Results: upstream.example; spf=pass smtp.mailfrom=ann@good.test',
        'From: Ann <ann@good.test>',
      ]);
      // The forged dkim=pass is gone; our own verdict: no signature, DMARC aligned through SPF.
      expect(auth?.dkim).toEqual([]);
      expect(lines(auth?.header)[1]).toBe(' dkim=none (message not signed);');
      expect(auth?.dmarc.result).toBe('pass');
    }
  });

  it('answers within mailAuthTimeout when DNS never answers: temperror, not a hung connection', async () => {
    const seen: Seen[] = [];
    const { port } = await startServer(buffered(seen), { ...settings(), mailAuthTimeout: 500 });
    expect(await send(port, 'ann@silent.test', message('silent.test'))).toMatch(/^250 2\.0\.0 /);
    const [{ auth }] = seen as [Seen];
    expect(auth?.spf.result).toBe('temperror');
    expect(auth?.dmarc.result).toBe('temperror');
    expect(auth?.header).toMatch(/^Authentication-Results: mx\.test;\r\n spf=temperror/);
  });

  it('Maildir and the catcher keep the verdict on top of the message; a refused one leaves nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-auth-maildir-'));
    try {
      const { port } = await startServer(Maildir, { ...settings(), maildir: dir, dmarcEnforce: true });
      expect(await send(port, 'ann@good.test', message('good.test'))).toMatch(/^250 2\.0\.0 /);
      const [name] = readdirSync(join(dir, 'new'));
      const stored = readFileSync(join(dir, 'new', name ?? '')).toString();
      const fields = stored
        .split('\r\n')
        .filter((line) => /^[\w-]+:/.test(line))
        .map((line) => line.slice(0, line.indexOf(':')));
      expect(fields).toEqual(['Return-Path', 'Received', 'Authentication-Results', 'From', 'To', 'Subject', 'Date']);
      expect(stored).toContain('Authentication-Results: mx.test;\r\n dkim=none (message not signed);\r\n spf=pass ');
      expect(stored.endsWith('\r\n\r\nHello there.\r\n')).toBe(true);
      expect(await send(port, 'ann@bad.test', message('bad.test'))).toBe(
        '550 5.7.1 Message refused: it fails the DMARC policy of bad.test\r\n',
      );
      expect([readdirSync(join(dir, 'new')).length, readdirSync(join(dir, 'tmp'))]).toEqual([1, []]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const controller = new Controller(RequestHandler, { inbox: true, settings: settings() });
    await controller.start();
    try {
      expect(await send(controller.port, 'ann@good.test', message('good.test'))).toMatch(/^250 2\.0\.0 /);
      const caught = await controller.inbox.waitFor({ header: { 'authentication-results': 'spf=pass' } });
      expect(caught.raw.toString().startsWith('Authentication-Results: mx.test;\r\n dkim=none')).toBe(true);
    } finally {
      await controller.stop();
    }
  });

  it('costs nothing when off: no lookups, no authentication on the request', async () => {
    const before = dns.queries.length;
    const seen: Seen[] = [];
    const { port } = await startServer(buffered(seen), { dnsServers: [dns.server] });
    expect(await send(port, 'ann@good.test', message('good.test'))).toMatch(/^250 2\.0\.0 /);
    expect(seen[0]?.auth).toBeUndefined();
    expect(dns.queries.length).toBe(before);
  });

  it('names a bad setting', async () => {
    await expect(startServer(RequestHandler, { mailAuth: true, authservId: 'not a host' })).rejects.toThrow(
      'authservId: authservId must be a host name',
    );
    await expect(startServer(RequestHandler, { mailAuth: true, mailAuthTimeout: 10 })).rejects.toThrow('mailAuthTimeout');
  });
});
