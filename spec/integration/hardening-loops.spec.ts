/**
 * Loops: Relay adds its Received field and greets the smarthost with its own name, so two relays
 * pointed at each other end in 554 5.4.6 within seconds instead of holding connections open.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Relay, sendDirect } from '../../lib/entry/outbound.js';
import { startDns } from '../helpers/dns.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, freePort, recordingHandler, startServer, type Received } from '../helpers/server.js';

afterEach(closeServers);

async function sendThrough(port: number): Promise<string> {
  const client = await RawClient.ehlo(port);
  await client.command('MAIL FROM:<a@b.test>');
  await client.command('RCPT TO:<c@d.test>');
  await client.command('DATA');
  const answer = await client.command('Subject: loop\r\n\r\nround and round\r\n.');
  client.close();
  return answer;
}

describe('Relay', () => {
  it('adds a Received field (RFC 5321 §4.4) and greets the smarthost with its hostname', async () => {
    const got: Received[] = [];
    const helos: string[] = [];
    const smarthost = await startServer(recordingHandler(got), { onHelo: (name: string) => void helos.push(name) });
    const relay = await startServer(Relay, { hostname: 'relay.test', relayHost: '127.0.0.1', relayPort: smarthost.port });
    expect(await sendThrough(relay.port)).toMatch(/^250 /);
    expect(helos).toEqual(['relay.test']);
    expect(got[0]?.body.toString()).toMatch(/^Received: from c\.test \(\[127\.0\.0\.1\]\)\r\n\tby relay\.test \(Sirocco\) with ESMTP id /);
  });

  it('two relays pointed at each other: the loop ends in 554 5.4.6 within seconds', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startServer(Relay, { hostname: 'a.test', relayHost: '127.0.0.1', relayPort: portB }, '127.0.0.1', portA);
    await startServer(Relay, { hostname: 'b.test', relayHost: '127.0.0.1', relayPort: portA }, '127.0.0.1', portB);
    expect(await sendThrough(a.port)).toMatch(/^554 5\.4\.6 /);
  });
});

describe('an MX that points back to this host', () => {
  it('fails at once with 5.4.6 "loops back to myself", without a delivery attempt', async () => {
    const dns = await startDns({ 'loop.test': { mx: [[10, 'mx.me.test']] }, 'mx.me.test': { a: ['127.0.0.1'] } });
    try {
      const report = await sendDirect({
        from: 'a@sender.test',
        to: ['x@loop.test'],
        message: 'Subject: loop\r\n\r\nhello\r\n',
        hostname: 'mx.me.test',
        port: await freePort(),
        dnsServers: [dns.server],
      });
      expect(report.recipients.map((r) => [r.recipient, r.code, r.status])).toEqual([['x@loop.test', 550, '5.4.6']]);
      expect(report.recipients[0]?.reply).toMatch(/mail for loop\.test loops back to myself/);
      expect(dns.queries.filter((q) => q.startsWith('A '))).toEqual([]);
    } finally {
      await dns.close();
    }
  });
});
