/**
 * Trust is never inherited: a client whose address a proxy or an XCLIENT peer did not give is
 * unknown, not the proxy. Unknown clients are in no trusted network, in no limit exemption, and
 * are logged as unknown; PROXY v2 families and transports outside the specification are refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, traceHeaders, type SessionInfo } from '../../lib/index.js';
import { Deliver } from '../../lib/entry/outbound.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

const folders: string[] = [];
afterEach(async () => {
  await closeServers();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A v2 header: signature, version/command, family/transport, then the address block. */
function v2(command: 0 | 1, family: number, block: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(block.length);
  return Buffer.concat([head, Buffer.from([0x20 | command, family]), length, block]);
}

const UNKNOWN_HEADERS: readonly [string, Buffer][] = [
  ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n')],
  ['v1 UNKNOWN with addresses', Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n')],
  ['v2 LOCAL', v2(0, 0x00)],
  ['v2 PROXY AF_UNSPEC', v2(1, 0x00)],
  ['v2 PROXY AF_UNIX', v2(1, 0x31, Buffer.alloc(216))],
];

/** A relay that relays for loopback (its default trusted network) and for nobody else. */
async function relay(settings: Record<string, unknown>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-trust-'));
  folders.push(dir);
  const { port } = await startServer(Deliver, { queueDir: dir, relayDomains: ['here.test'], dnsServers: ['127.0.0.1:9'], ...settings });
  return port;
}

describe('a client whose address is not known', () => {
  it.each(UNKNOWN_HEADERS)('behind a trusted proxy (%s) is not the proxy: no relaying', async (_name, header) => {
    const connects: SessionInfo[] = [];
    const port = await relay({ proxyFrom: ['127.0.0.1'], onConnect: (s: SessionInfo) => void connects.push(s) });
    const client = await RawClient.connect(port);
    client.write(header);
    expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    await client.command('EHLO c.test');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<x@elsewhere.test>')).toBe('554 5.7.1 Relay access denied\r\n');
    expect(connects[0]).toMatchObject({ remoteAddress: '' });
    client.close();
  });

  it('is written as unknown in Received, not as a Unix socket client', async () => {
    const fields: string[] = [];
    class Tracing extends RequestHandler {
      override data(): void {
        fields.push(traceHeaders(this.request, 'mx.test', new Date(0)).split('\r\n')[1] ?? '');
      }
    }
    const behindProxy = await startServer(Tracing, { proxyFrom: ['127.0.0.1'] });
    const behindFilter = await startServer(Tracing, { xclientFrom: ['127.0.0.1'] });
    const proxied = await RawClient.connect(behindProxy.port);
    proxied.write('PROXY UNKNOWN\r\n');
    await proxied.reply();
    const named = await RawClient.ehlo(behindFilter.port);
    await named.command('XCLIENT ADDR=[UNAVAILABLE]');
    for (const client of [proxied, named]) {
      await client.command('EHLO c.test');
      await client.command('MAIL FROM:<a@b.test>');
      await client.command('RCPT TO:<x@here.test>');
      await client.command('DATA');
      expect(await client.command('x\r\n.')).toMatch(/^250 /);
      client.close();
    }
    expect(fields).toEqual(['Received: from c.test (unknown)', 'Received: from c.test (unknown)']);
  });

  it('is counted by the per-client limits, not exempt as loopback', async () => {
    const { port } = await startServer(RequestHandler, { proxyFrom: ['127.0.0.1'], maxConnectionsPerIp: 1 });
    const first = await RawClient.connect(port);
    first.write('PROXY UNKNOWN\r\n');
    expect(await first.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    const second = await RawClient.connect(port);
    second.write(v2(0, 0x00));
    expect(await second.reply()).toBe('421 4.7.0 Too many connections from your address, try again later\r\n');
    first.close();
  });

  it('named [UNAVAILABLE] or [TEMPUNAVAIL] by XCLIENT is unknown, not the XCLIENT peer', async () => {
    const port = await relay({ xclientFrom: ['127.0.0.1'] });
    for (const value of ['[UNAVAILABLE]', '[TEMPUNAVAIL]']) {
      const client = await RawClient.ehlo(port);
      expect(await client.command(`XCLIENT ADDR=${value} NAME=x.test`)).toBe('220 mx.test ESMTP Sirocco\r\n');
      await client.command('EHLO c.test');
      expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
      expect(await client.command('RCPT TO:<x@elsewhere.test>')).toBe('554 5.7.1 Relay access denied\r\n');
      client.close();
    }
  });
});

describe('PROXY v2 headers outside the specification', () => {
  it.each([
    ['an undefined family', 0x41],
    ['an undefined transport', 0x13],
    ['a datagram transport', 0x12],
  ])('with %s are refused: closed without a banner', async (_name, family) => {
    const { port } = await startServer(RequestHandler, { proxyFrom: ['127.0.0.1'] });
    const client = await RawClient.connect(port);
    client.write(v2(1, family, Buffer.alloc(12)));
    expect(await client.closedByServer()).toBe('');
  });
});
