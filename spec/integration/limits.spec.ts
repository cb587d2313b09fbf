/** Every limit holds, with its reply, and the connection stays usable where it should. */
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';
import { RequestHandler } from '../../lib/index.js';

afterEach(closeServers);

describe('limits', () => {
  it('refuses an over-long command line with 500 and stays usable', async () => {
    const { port } = await startServer(undefined, { maxLineLength: 512 });
    const c = await RawClient.greeted(port);
    expect(await c.command(`NOOP ${'x'.repeat(505)}`)).toBe('250 2.0.0 Ok\r\n');
    expect(await c.command(`NOOP ${'x'.repeat(506)}`)).toBe('500 5.5.2 Line too long\r\n');
    expect(await c.command(`NOOP ${'x'.repeat(100_000)}`)).toBe('500 5.5.2 Line too long\r\n');
    expect(await c.command('EHLO c.test')).toMatch(/^250-/);
    c.close();
  });

  it('answers 452 past the recipient limit and keeps the accepted ones', async () => {
    let seen: readonly string[] = [];
    class Recording extends RequestHandler {
      override data(): void {
        seen = this.request.rcptTos;
      }
    }
    const { port } = await startServer(Recording, { maxRecipients: 2 });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    expect(await c.command('RCPT TO:<1@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.command('RCPT TO:<2@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.command('RCPT TO:<3@d.test>')).toBe('452 4.5.3 Too many recipients\r\n');
    await c.command('DATA');
    expect(await c.command('.')).toMatch(/^250 /);
    expect(seen).toEqual(['1@d.test', '2@d.test']);
    c.close();
  });

  it('closes an idle connection with 421 4.4.2', async () => {
    const { port } = await startServer(undefined, { idleTimeout: 200 });
    const c = await RawClient.greeted(port);
    expect(await c.closedByServer()).toBe('421 4.4.2 Idle timeout, closing connection\r\n');
  });

  it('keeps a connection whose client speaks within the timeout', async () => {
    const { port } = await startServer(undefined, { idleTimeout: 300 });
    const c = await RawClient.greeted(port);
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 150));
      expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    }
    expect(await c.closedByServer()).toBe('421 4.4.2 Idle timeout, closing connection\r\n');
  });

  it('does not count a slow handler as client idleness', async () => {
    class Slow extends RequestHandler {
      override async data(): Promise<void> {
        await new Promise((r) => setTimeout(r, 400));
      }
    }
    const { port } = await startServer(Slow, { idleTimeout: 200 });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    expect(await c.command('.')).toMatch(/^250 /);
    c.close();
  });

  it('closes with 421 after too many bad commands', async () => {
    const { port } = await startServer(undefined, { maxBadCommands: 3 });
    const c = await RawClient.greeted(port);
    expect(await c.command('FOO')).toBe('500 5.5.2 Command not recognized\r\n');
    expect(await c.command('RCPT TO:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    c.write('BAR\r\n');
    expect(await c.closedByServer()).toBe('500 5.5.2 Command not recognized\r\n421 4.7.0 Too many errors, closing connection\r\n');
  });

  it('refuses connections past maxConnections with 421', async () => {
    const { port } = await startServer(undefined, { maxConnections: 2 });
    const a = await RawClient.greeted(port);
    const b = await RawClient.greeted(port);
    const c = await RawClient.connect(port);
    expect(await c.closedByServer()).toBe('421 4.7.0 Too many connections, try again later\r\n');
    a.close();
    await until(() => a.closed);
    await new Promise((r) => setTimeout(r, 50));
    const d = await RawClient.connect(port);
    expect(await d.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    b.close();
    d.close();
  });

  it('stops reading a client that pipelines without end while a handler runs', async () => {
    let release: () => void = () => undefined;
    class Blocking extends RequestHandler {
      override async prepare(): Promise<void> {
        await new Promise<void>((r) => (release = r));
      }
    }
    const { port } = await startServer(Blocking, { maxBufferedBytes: 4096 });
    const c = await RawClient.ehlo(port);
    c.write('MAIL FROM:<a@b.test>\r\n');
    await new Promise((r) => setTimeout(r, 50));
    // 16 MiB of NOOPs while prepare() holds the session. If the server kept reading, the kernel
    // buffers would drain and the client would have nothing left to send.
    c.write('NOOP\r\n'.repeat(Math.floor((16 * 1024 * 1024) / 6)));
    await new Promise((r) => setTimeout(r, 300));
    expect(c.socket.writableLength).toBeGreaterThan(0);
    release();
    expect(await c.reply()).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.reply()).toBe('250 2.0.0 Ok\r\n');
    c.close();
  });
});
