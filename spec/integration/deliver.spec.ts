/**
 * The Deliver handler end to end: a client submits, the queue looks up MX records in a DNS server
 * the test runs, and delivers to Sirocco exchangers on 127.0.0.x; bounces come back to the
 * sender's own exchanger.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SMTPError, type SettingsInput } from '../../lib/index.js';
import { Deliver, deliveryQueue, type DeliverSettings } from '../../lib/entry/outbound.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { plainTransport } from '../helpers/mailer.js';
import { startFleet, tempQueue, type Fleet } from '../helpers/outbound.js';
import { closeServers, startServer, until } from '../helpers/server.js';
import { RawClient } from '../helpers/raw-client.js';

let dns: TestDns;
const cleanups: (() => void | Promise<void>)[] = [];

beforeAll(async () => {
  dns = await startDns({
    // Preference order: mx1 refuses to greet, mx2 takes the mail, mx3 must never be tried.
    'pref.test': {
      mx: [
        [30, 'mx3.pref.test'],
        [10, 'mx1.pref.test'],
        [20, 'mx2.pref.test'],
      ],
    },
    'mx1.pref.test': { a: ['127.0.0.2'] },
    'mx2.pref.test': { a: ['127.0.0.3'] },
    'mx3.pref.test': { a: ['127.0.0.4'] },
    'b.test': { mx: [[10, 'mx.b.test']] },
    'mx.b.test': { a: ['127.0.0.3'] },
    // The senders' domain: bounces come back here.
    'sender.test': { mx: [[10, 'mx.sender.test']] },
    'mx.sender.test': { a: ['127.0.0.5'] },
    'nullmx.test': { mx: 'null' },
    'implicit.test': { a: ['127.0.0.3'] },
    'broken.test': { fail: 'SERVFAIL' },
    // Its exchanger (127.0.0.4 in the test below) offers DSN.
    'dsn.test': { mx: [[10, 'mx3.pref.test']] },
  });
});

afterAll(async () => {
  await dns.close();
});

afterEach(async () => {
  await closeServers();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A fleet on 127.0.0.2–5 (the sender's exchanger on .5) and a Deliver server using it. */
async function setup(plans: Parameters<typeof startFleet>[1][] = [], settings: Partial<DeliverSettings> & SettingsInput = {}) {
  const fleet = await startFleet('127.0.0.2', plans[0] ?? {});
  cleanups.push(() => fleet.close());
  for (const [i, address] of ['127.0.0.3', '127.0.0.4', '127.0.0.5'].entries()) await fleet.add(address, plans[i + 1] ?? {});
  const queue = tempQueue();
  cleanups.push(queue.cleanup);
  const running = await startServer(Deliver, {
    hostname: 'mta.test',
    queueDir: queue.dir,
    dnsServers: [dns.server],
    deliveryPort: fleet.port,
    retrySchedule: [1],
    queueScanInterval: 100,
    deliveryConnectTimeout: 2000,
    ...settings,
  });
  return { fleet, ...running, queueDir: queue.dir };
}

async function submit(port: number, from: string, to: string[], subject = 'hello'): Promise<string> {
  const transport = plainTransport(port);
  try {
    const info = await transport.sendMail({ envelope: { from, to }, from, to, subject, text: 'body' });
    return info.response;
  } finally {
    transport.close();
  }
}

/** Waits until an async condition holds, checking every 50 ms for at most `ms`. */
async function eventually(predicate: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const bouncesIn = (fleet: Fleet) => fleet.arrivals.filter((a) => a.mailFrom === '');

describe('Deliver: MX order and fallback', () => {
  it("logs the queue's own id under its own key: one queueId per line, the outbound id as outboundId", async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
    const { port } = await setup([], { logger });
    expect(await submit(port, 'a@sender.test', ['x@b.test'])).toMatch(/^250 /);
    await until(() => lines.some((l) => l.includes('"queued for delivery"')));
    const queued = lines.find((l) => l.includes('"queued for delivery"')) ?? '';
    expect(queued.match(/"queueId"/g)).toHaveLength(1);
    expect(queued).toMatch(/"outboundId":"[0-9a-z]+"/);
    expect(lines.every((l) => (l.match(/"queueId"/g) ?? []).length <= 1)).toBe(true);
  });

  it('tries exchangers by preference and moves on from one that refuses to greet', async () => {
    const { fleet, port } = await setup([{ refuseGreeting: new SMTPError(421, [4, 3, 2], 'busy') }]);
    expect(await submit(port, 'alice@sender.test', ['bob@pref.test'])).toMatch(/^250 2\.0\.0 Ok: queued as [a-z0-9]+$/);
    await until(() => fleet.arrivals.length === 1, 10_000);
    expect(fleet.arrivals[0]).toMatchObject({ exchanger: '127.0.0.3', mailFrom: 'alice@sender.test', rcptTos: ['bob@pref.test'] });
    expect(fleet.arrivals[0]?.body).toMatch(/^Received: from \S+ \(\[127\.0\.0\.1\]\)\r\n\tby mta\.test \(Sirocco\)/);
    expect(fleet.connections.get('127.0.0.2')).toBe(1);
    expect(fleet.connections.get('127.0.0.4')).toBeUndefined();
  });

  it('with no MX record delivers to the domain itself (implicit MX)', async () => {
    const { fleet, port } = await setup();
    await submit(port, 'alice@sender.test', ['carol@implicit.test']);
    await until(() => fleet.arrivals.length === 1, 10_000);
    expect(fleet.arrivals[0]).toMatchObject({ exchanger: '127.0.0.3', rcptTos: ['carol@implicit.test'] });
  });

  it('carries several queued messages for one destination over one connection', async () => {
    const fleet = await startFleet('127.0.0.3');
    cleanups.push(() => fleet.close());
    const queue = tempQueue();
    cleanups.push(queue.cleanup);
    const { Application } = await import('../../lib/index.js');
    const app = new Application(Deliver, {
      hostname: 'mta.test',
      queueDir: queue.dir,
      dnsServers: [dns.server],
      deliveryPort: fleet.port,
      deliveryConcurrencyPerDomain: 1,
      logger: (await import('../helpers/server.js')).silent,
    });
    for (let i = 0; i < 5; i++) {
      await deliveryQueue(app).enqueue(
        { from: 'alice@sender.test', recipients: [{ address: `r${i}@b.test` }] },
        Buffer.from(`Subject: ${i}\r\n\r\nx\r\n`),
      );
    }
    const server = await app.listen(0, '127.0.0.1');
    cleanups.push(() => server.close());
    await until(() => fleet.arrivals.length === 5, 10_000);
    expect(fleet.connections.get('127.0.0.3')).toBe(1);
    expect(fleet.arrivals.map((a) => a.rcptTos[0]).sort()).toEqual(['r0@b.test', 'r1@b.test', 'r2@b.test', 'r3@b.test', 'r4@b.test']);
  });
});

describe('Deliver: retries and bounces', () => {
  it('retries after a 4xx and delivers on the next attempt', async () => {
    const { fleet, port } = await setup([{}, { failData: { error: new SMTPError(451, [4, 3, 0], 'try later'), times: 1 } }]);
    await submit(port, 'alice@sender.test', ['bob@b.test']);
    await until(() => fleet.arrivals.length === 1, 10_000);
    // The exchanger refused the first attempt: an arrival is the retry's (over the same connection,
    // still open within its linger time, or a new one).
    expect(bouncesIn(fleet)).toEqual([]);
  });

  it('bounces the one refused recipient of two to the sender, and delivers the other', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
    const { fleet, port } = await setup([{}, { refuseRcpt: { 'no@b.test': new SMTPError(550, [5, 1, 1], 'no such user') } }], { logger });
    await submit(port, 'alice@sender.test', ['yes@b.test', 'no@b.test'], 'two of them');
    await until(() => bouncesIn(fleet).length === 1, 10_000);
    const delivered = fleet.arrivals.filter((a) => a.mailFrom !== '');
    expect(delivered.map((a) => a.rcptTos)).toEqual([['yes@b.test']]);
    const bounce = bouncesIn(fleet)[0];
    expect(bounce).toMatchObject({ exchanger: '127.0.0.5', rcptTos: ['alice@sender.test'] });
    expect(bounce?.body).toContain(
      'Final-Recipient: rfc822; no@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.b.test\r\n',
    );
    expect(bounce?.body).toContain('Diagnostic-Code: smtp; 550 5.1.1 no such user');
    expect(bounce?.body).toContain('Subject: two of them');
    expect(bounce?.body).not.toContain('yes@b.test>:');
    // A refusal is a warning in the logs; a delivery is information.
    const levels = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; to?: string })
      .filter((l) => (l.msg === 'refused' || l.msg === 'delivered') && l.to !== 'alice@sender.test');
    expect(levels.map((l) => [l.msg, l.to, l.level]).sort()).toEqual([
      ['delivered', 'yes@b.test', 30],
      ['refused', 'no@b.test', 40],
    ]);
  });

  it('bounces a null-MX domain at once with 5.1.10, without retrying', async () => {
    const { fleet, port, app } = await setup();
    await submit(port, 'alice@sender.test', ['x@nullmx.test']);
    await until(() => bouncesIn(fleet).length === 1, 10_000);
    expect(bouncesIn(fleet)[0]?.body).toContain('Final-Recipient: rfc822; x@nullmx.test\r\nAction: failed\r\nStatus: 5.1.10\r\n');
    await eventually(async () => (await deliveryQueue(app).spool.list()).length === 0);
  });

  it('bounces a domain that does not exist with 5.1.2', async () => {
    const { fleet, port } = await setup();
    await submit(port, 'alice@sender.test', ['x@nowhere.test']);
    await until(() => bouncesIn(fleet).length === 1, 10_000);
    expect(bouncesIn(fleet)[0]?.body).toContain('Status: 5.1.2\r\n');
    expect(bouncesIn(fleet)[0]?.body).toContain('nowhere.test: no such domain');
  });

  it('keeps a message whose DNS fails for a while (SERVFAIL is temporary)', async () => {
    const { port, app } = await setup([], { retrySchedule: [3600] });
    await submit(port, 'alice@sender.test', ['x@broken.test']);
    await eventually(async () => (await deliveryQueue(app).spool.list()).some((e) => e.entry.attempts === 1 && !e.active), 10_000);
    const [entry] = (await deliveryQueue(app).spool.list()).map((e) => e.entry);
    expect(entry?.recipients[0]).toMatchObject({ state: 'pending', code: 451, status: '4.4.3' });
  });

  it('bounces a message that outlives the queue lifetime, with the last reply', async () => {
    const always = new SMTPError(451, [4, 2, 1], 'mailbox busy');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
    const { fleet, port } = await setup([{}, { failData: { error: always, times: 1000 } }], { queueLifetime: 2, logger });
    await submit(port, 'alice@sender.test', ['bob@b.test']);
    await until(() => bouncesIn(fleet).length === 1, 15_000);
    const expired = lines.map((l) => JSON.parse(l) as { level: number; msg: string; to?: string }).filter((l) => l.msg === 'expired');
    expect(expired.map((l) => [l.to, l.level])).toEqual([['bob@b.test', 40]]);
    const body = bouncesIn(fleet)[0]?.body ?? '';
    expect(body).toContain('Action: failed\r\nStatus: 4.4.7\r\n');
    expect(body).toMatch(/Diagnostic-Code: smtp; 451 4\.4\.7 message expired after \d+ attempts; last reply: 451 4\.2\.1 mailbox busy/);
  });

  it('tells the sender once that a message is delayed, when delayNoticeAfter passes', async () => {
    const always = new SMTPError(451, [4, 2, 1], 'mailbox busy');
    const { fleet, port } = await setup([{}, { failData: { error: always, times: 1000 } }], { delayNoticeAfter: 1 });
    await submit(port, 'alice@sender.test', ['bob@b.test']);
    await until(() => bouncesIn(fleet).length === 1, 15_000);
    const body = bouncesIn(fleet)[0]?.body ?? '';
    expect(body).toContain('Subject: Delayed Mail (still being retried)');
    expect(body).toContain('Action: delayed\r\nStatus: 4.2.1\r\n');
    expect(body).toMatch(/Will-Retry-Until: /);
    await new Promise((r) => setTimeout(r, 2500));
    expect(bouncesIn(fleet)).toHaveLength(1);
  });

  it('tells the sender of NOTIFY=SUCCESS recipients taken by an exchanger without DSN (relayed), and leaves it to one with DSN', async () => {
    const { fleet, port } = await setup([{}, {}, { settings: { dsn: true } }], { dsn: true });
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<alice@sender.test> ENVID=env7')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<carol@dsn.test> NOTIFY=SUCCESS')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<dave@b.test>')).toMatch(/^250 /);
    expect(await client.command('DATA')).toMatch(/^354 /);
    expect(await client.command('Subject: tell me\r\n\r\nx\r\n.')).toMatch(/^250 /);
    client.close();
    await until(() => bouncesIn(fleet).length === 1, 10_000);
    const body = bouncesIn(fleet)[0]?.body ?? '';
    expect(body).toContain('Subject: Relayed Mail (no further notice will come)\r\n');
    expect(body).toContain('Original-Envelope-Id: env7\r\n');
    expect(body).toMatch(/Final-Recipient: rfc822; bob@b\.test\r\nAction: relayed\r\nStatus: 2\.0\.0\r\nRemote-MTA: dns; mx\.b\.test\r\n/);
    expect(body).not.toContain('Final-Recipient: rfc822; carol@dsn.test');
    expect(body).not.toContain('Final-Recipient: rfc822; dave@b.test');
    expect(body).toContain('Content-Type: text/rfc822-headers\r\n');
    expect(
      fleet.arrivals
        .filter((a) => a.mailFrom === 'alice@sender.test')
        .flatMap((a) => a.rcptTos)
        .sort(),
    ).toEqual(['bob@b.test', 'carol@dsn.test', 'dave@b.test']);
    await new Promise((r) => setTimeout(r, 300));
    expect(bouncesIn(fleet)).toHaveLength(1);
  });

  it('sends no bounce for NOTIFY=NEVER, and none for a message from the null sender', async () => {
    const { fleet, port, app } = await setup([{}, { refuseRcpt: { 'no@b.test': new SMTPError(550, [5, 1, 1], 'no such user') } }], {
      dsn: true,
    });
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<alice@sender.test>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<no@b.test> NOTIFY=NEVER')).toMatch(/^250 /);
    expect(await client.command('DATA')).toMatch(/^354 /);
    expect(await client.command('Subject: quiet\r\n\r\nx\r\n.')).toMatch(/^250 /);
    expect(await client.command('MAIL FROM:<>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<no@b.test>')).toMatch(/^250 /);
    expect(await client.command('DATA')).toMatch(/^354 /);
    expect(await client.command('Subject: a bounce itself\r\n\r\nx\r\n.')).toMatch(/^250 /);
    client.close();
    await eventually(async () => (await deliveryQueue(app).spool.list()).length === 0, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(bouncesIn(fleet)).toEqual([]);
    expect(fleet.arrivals).toEqual([]);
  });
});

describe('Deliver: mail loops', () => {
  it('refuses a message with more Received fields than maxHops, 554 5.4.6, and queues nothing', async () => {
    const { port, app } = await setup([], { maxHops: 3 });
    const transport = plainTransport(port);
    const hops = (n: number): string => 'Received: from a by b; Mon, 1 Dec 2026 00:00:00 +0000\r\n'.repeat(n);
    await expect(
      transport.sendMail({ envelope: { from: 'a@sender.test', to: ['b@b.test'] }, raw: `${hops(4)}Subject: loop\r\n\r\nx\r\n` }),
    ).rejects.toMatchObject({ response: '554 5.4.6 Too many hops: routing loop detected' });
    expect(
      (await transport.sendMail({ envelope: { from: 'a@sender.test', to: ['b@b.test'] }, raw: `${hops(3)}Subject: ok\r\n\r\nx\r\n` }))
        .response,
    ).toMatch(/^250 /);
    transport.close();
    await eventually(async () => (await deliveryQueue(app).list()).length === 0, 10_000);
  });
});

describe('Deliver: BINARYMIME', () => {
  it('delivers a BINARYMIME message that is 8-bit text unchanged, and refuses binary content DATA would change, queueing nothing', async () => {
    const { port, app, fleet } = await setup([], { deliverTraceHeaders: false });
    const send = (payload: Buffer): Promise<string> => RawClient.binaryMessage(port, 'a@sender.test', 'b@b.test', payload);
    expect(await send(Buffer.from('Subject: bin\r\n\r\nbare\nLF\r\n'))).toBe(
      '554 5.6.3 Conversion required but not supported: binary content cannot be passed on\r\n',
    );
    expect(await send(Buffer.from('Subject: nul\r\n\r\na\u0000b\r\n'))).toMatch(/^554 5\.6\.3 /);
    expect((await deliveryQueue(app).list()).length).toBe(0);
    const text = Buffer.from('Subject: text\r\n\r\n\u00fcber\r\n', 'utf8');
    expect(await send(text)).toMatch(/^250 /);
    await until(() => fleet.arrivals.length === 1, 10_000);
    expect(fleet.arrivals[0]?.body).toBe(text.toString('utf8'));
  });
});

describe('Deliver: never an open relay', () => {
  it('refuses an unauthenticated, untrusted client a recipient outside relayDomains, 554 5.7.1', async () => {
    const queue = tempQueue();
    cleanups.push(queue.cleanup);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
    const { port } = await startServer(Deliver, {
      queueDir: queue.dir,
      trustedNetworks: [],
      relayDomains: ['b.test'],
      dnsServers: [dns.server],
      logger,
    });
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<a@sender.test>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<x@elsewhere.test>')).toBe('554 5.7.1 Relay access denied\r\n');
    // The log names the client (as every other refusal's line does).
    expect(lines.some((l) => l.includes('relay to x@elsewhere.test refused for unauthenticated client 127.0.0.1'))).toBe(true);
    expect(await client.command('RCPT TO:<y@B.TEST>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<z@[127.0.0.1]>')).toBe('550 5.1.2 Address literals are not delivered; use a domain name\r\n');
    client.close();
  });
});
