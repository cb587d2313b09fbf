/** Per-client limits over real sockets: connections per address and per /24, the connection rate, AUTH failures. */
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

afterEach(closeServers);

const LIMIT = '421 4.7.0 Too many connections from your address, try again later\r\n';
const open = (port: number, from: string): Promise<RawClient> => RawClient.connect(port, '127.0.0.1', from);

describe('per-client limits', () => {
  it('hold open connections per address, and let the next one in once one ends', async () => {
    const { port } = await startServer(RequestHandler, { limitExempt: [], maxConnectionsPerIp: 2 });
    const a = await open(port, '127.0.0.2');
    const b = await open(port, '127.0.0.2');
    expect(await a.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await b.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await (await open(port, '127.0.0.2')).closedByServer()).toBe(LIMIT);
    // Another address is not held back.
    expect(await (await open(port, '127.0.0.3')).reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await a.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    await a.closedByServer();
    await new Promise((r) => setTimeout(r, 50));
    expect(await (await open(port, '127.0.0.2')).reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
  });

  it('hold open connections per /24 network', async () => {
    const { port } = await startServer(RequestHandler, { limitExempt: [], maxConnectionsPerNet: 2 });
    expect(await (await open(port, '127.0.0.2')).reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await (await open(port, '127.0.0.3')).reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await (await open(port, '127.0.0.4')).closedByServer()).toBe(LIMIT);
  });

  it('hold the connection rate per address within the window', async () => {
    const { port } = await startServer(RequestHandler, { limitExempt: [], connectionRatePerIp: 3 });
    for (let i = 0; i < 3; i++) {
      const c = await open(port, '127.0.0.5');
      expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
      c.close();
    }
    expect(await (await open(port, '127.0.0.5')).closedByServer()).toBe(LIMIT);
  });

  it('leave exempt clients (loopback by default) alone', async () => {
    const { port } = await startServer(RequestHandler, { maxConnectionsPerIp: 1 });
    const a = await RawClient.connect(port);
    const b = await RawClient.connect(port);
    expect(await a.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await b.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
  });

  it('answer AUTH 454 4.7.0 once an address failed authFailuresPerIp times, on any connection', async () => {
    const { port } = await startServer(RequestHandler, {
      limitExempt: [],
      authFailuresPerIp: 2,
      allowInsecureAuth: true,
      authenticate: () => false,
    });
    const plain = (user: string): string => `AUTH PLAIN ${Buffer.from(`\0${user}\0wrong`).toString('base64')}`;
    const first = await open(port, '127.0.0.6');
    await first.reply();
    await first.command('EHLO c.test');
    expect(await first.command(plain('a'))).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect(await first.command(plain('b'))).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    const second = await open(port, '127.0.0.6');
    await second.reply();
    await second.command('EHLO c.test');
    expect(await second.command(plain('c'))).toBe('454 4.7.0 Too many authentication failures from your address, try again later\r\n');
    const other = await open(port, '127.0.0.7');
    await other.reply();
    await other.command('EHLO c.test');
    expect(await other.command(plain('d'))).toBe('535 5.7.8 Authentication credentials invalid\r\n');
  });
});
