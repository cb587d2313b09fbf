/**
 * No backscatter: mail an outside client (neither authenticated nor trusted) sends to
 * relayDomains never produces a notice to its sender, whom nobody verified; relayRecipients
 * refuses unknown recipients at RCPT, so a real sender still learns of its mistake at once.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError, type HandlerClass } from '../../lib/index.js';
import { Deliver, Relay } from '../../lib/entry/outbound.js';
import { startDns } from '../helpers/dns.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until, type Received } from '../helpers/server.js';

const folders: string[] = [];
afterEach(async () => {
  await closeServers();
  for (const d of folders.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A next hop that takes what it is given, and refuses every recipient named no@…. */
function picky(received: Received[]): HandlerClass {
  return class extends RequestHandler {
    override rcpt(address: string): void {
      if (address.startsWith('no@')) throw new SMTPError(550, [5, 1, 1], 'no such user here');
    }
    override data(): void {
      received.push({ mailFrom: this.request.mailFrom, rcptTos: [...this.request.rcptTos], body: this.request.body });
    }
  };
}

async function send(port: number, to: readonly string[], extra = ''): Promise<string[]> {
  const c = await RawClient.ehlo(port);
  const answers = [await c.command(`MAIL FROM:<forged@victim.test>${extra}`)];
  for (const rcpt of to) answers.push(await c.command(`RCPT TO:<${rcpt}>`));
  await c.command('DATA');
  answers.push(await c.command('Subject: hi\r\n\r\nbody\r\n.'));
  c.close();
  return answers;
}

describe('Relay for an outside client', () => {
  it('sends no bounce to the sender when the next hop refuses a recipient after the 250', async () => {
    const received: Received[] = [];
    const next = await startServer(picky(received));
    const relay = await startServer(Relay, {
      relayHost: '127.0.0.1',
      relayPort: next.port,
      relayDomains: ['here.test'],
      trustedNetworks: [],
    });
    const answers = await send(relay.port, ['ok@here.test', 'no@here.test']);
    expect(answers.at(-1)).toMatch(/^250 /);
    await new Promise((r) => setTimeout(r, 300));
    expect(received.map((r) => [r.mailFrom, r.rcptTos])).toEqual([['forged@victim.test', ['ok@here.test']]]);
  });

  it('refuses at RCPT, 550 5.1.1, a recipient relayRecipients does not list', async () => {
    const received: Received[] = [];
    const next = await startServer(picky(received));
    const relay = await startServer(Relay, {
      relayHost: '127.0.0.1',
      relayPort: next.port,
      relayDomains: ['here.test', 'all.test'],
      relayRecipients: ['ok@here.test', '@all.test'],
      trustedNetworks: [],
    });
    const answers = await send(relay.port, ['ok@here.test', 'no@here.test', 'anyone@all.test']);
    expect(answers.slice(1, 4)).toEqual([
      '250 2.1.5 Recipient ok\r\n',
      '550 5.1.1 Recipient address rejected: unknown user\r\n',
      '250 2.1.5 Recipient ok\r\n',
    ]);
  });
});

describe('Deliver for an outside client', () => {
  it('queues no bounce when the exchanger refuses the recipient', async () => {
    const received: Received[] = [];
    const next = await startServer(picky(received));
    const dns = await startDns({ 'here.test': { mx: [[10, 'mx.here.test']] }, 'mx.here.test': { a: ['127.0.0.1'] } });
    const queueDir = mkdtempSync(join(tmpdir(), 'sirocco-backscatter-'));
    folders.push(queueDir);
    try {
      const { port } = await startServer(Deliver, {
        queueDir,
        relayDomains: ['here.test'],
        trustedNetworks: [],
        deliveryPort: next.port,
        dnsServers: [dns.server],
        queueScanInterval: 100,
      });
      expect((await send(port, ['no@here.test'])).at(-1)).toMatch(/^250 /);
      const waiting = (): number => readdirSync(join(queueDir, 'queue')).length + readdirSync(join(queueDir, 'active')).length;
      // The message is tried, refused for good, and gone.
      await until(() => dns.queries.includes('A mx.here.test') && waiting() === 0, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(waiting()).toBe(0);
      expect(received).toEqual([]);
      // A bounce would have been sent towards the sender's domain.
      expect(dns.queries.filter((q) => q.includes('victim.test'))).toEqual([]);
    } finally {
      await dns.close();
    }
  });
});
