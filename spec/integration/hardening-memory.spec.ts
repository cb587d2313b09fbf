/**
 * Memory per byte the limits allow: a body sent in the smallest pieces costs what its bytes cost,
 * not a Buffer per piece. The figures of floods from one client for every surface are in the
 * bench (`npm run bench`, the floods table); these tests hold the bound where a test can.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { RequestHandler } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';

afterEach(closeServers);

const MiB = 1024 * 1024;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Memory that is alive: garbage is collected first. */
const inUse = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

describe('a buffered handler', () => {
  it('holds a body of 300,000 one-byte BDAT chunks in about its size, not a Buffer per chunk', async () => {
    let atData = 0;
    let body: Buffer = Buffer.alloc(0);
    const before = inUse();
    const { port } = await startServer(
      class extends RequestHandler {
        override data(): void {
          // The body's parts are all alive here: what the server holds for it.
          atData = inUse();
          body = this.request.body;
        }
      },
      { bodyMemoryBudget: 64 * MiB, maxMessageSize: 10 * MiB },
    );
    const client = await RawClient.ehlo(port);
    await client.command('MAIL FROM:<a@b.test>');
    await client.command('RCPT TO:<c@d.test>');
    const chunks = 300_000;
    const piece = Buffer.from('BDAT 1\r\nX'.repeat(10_000));
    for (let i = 0; i < chunks / 10_000; i++) client.write(piece);
    client.write('BDAT 0 LAST\r\n');
    let lines = 0;
    let seen = 0;
    const text = await client.readUntil((t) => {
      for (let i = t.indexOf('\r\n', seen); i !== -1; i = t.indexOf('\r\n', i + 2)) lines++;
      seen = t.lastIndexOf('\r\n') + 2;
      return lines >= chunks + 1;
    }, 60_000);
    expect(text.slice(text.lastIndexOf('\r\n', text.length - 3) + 2)).toMatch(/^250 /);
    expect(body.length).toBe(chunks);
    // The client's own buffer of 300,000 replies is most of this: the body's share is spec/unit/message-body.spec.ts.
    expect(atData - before).toBeLessThan(24 * MiB);
    client.close();
  });
});

describe('short connections', () => {
  /** One whole session: EHLO, one message, QUIT, each command sent once the last reply came. */
  function oneMessage(port: number): Promise<void> {
    const script = [
      'EHLO c.test\r\n',
      'MAIL FROM:<a@b.test>\r\n',
      'RCPT TO:<c@d.test>\r\n',
      'DATA\r\n',
      'Subject: x\r\n\r\nhi\r\n.\r\n',
      'QUIT\r\n',
    ];
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      let step = 0;
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => {
        text += d;
        for (let end = text.search(/^\d{3} .*\r\n/m); end !== -1; end = text.search(/^\d{3} .*\r\n/m)) {
          text = text.slice(text.indexOf('\r\n', end) + 2);
          if (step < script.length) socket.write(script[step++] ?? '');
        }
      });
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
  }

  it('leave nothing alive once closed: 4,000 one-message connections cost no heap after a collection', async () => {
    const { port } = await startServer(RequestHandler);
    await Promise.all(Array.from({ length: 20 }, () => oneMessage(port)));
    const before = inUse();
    for (let i = 0; i < 4000; i += 20) await Promise.all(Array.from({ length: 20 }, () => oneMessage(port)));
    await new Promise((r) => setTimeout(r, 100));
    // Before, each closed connection stayed alive for 5 s on its linger timer: about 7 KB each.
    expect(inUse() - before).toBeLessThan(8 * MiB);
  }, 60_000);
});

describe('a client that sent QUIT', () => {
  it('is closed once the 221 is written, without the server waiting for its side of the close', async () => {
    const { server, port } = await startServer(RequestHandler);
    // allowHalfOpen: the client keeps its side open after the server's FIN, as a slow client does.
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    let ended = false;
    socket.on('end', () => (ended = true));
    await until(() => text.startsWith('220 '));
    socket.write('QUIT\r\n');
    await until(() => ended);
    expect(text.split('\r\n').slice(1)).toEqual(['221 2.0.0 Bye', '']);
    // Before, the server held the connection until the client closed or 5 s passed.
    await until(() => server.connections === 0, 2000);
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  });
});
