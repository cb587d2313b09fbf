/**
 * How connections read their sockets (lib/net/reader.ts): the direct path into a shared read
 * buffer, and the stream path it falls back to. Both must hand over exactly the bytes sent, in
 * Buffers nobody overwrites, with pause/resume and end of stream working; a whole SMTP session
 * must behave the same on either.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Application, RequestHandler, SMTPServer } from '../../lib/index.js';
import { giveBack, isReadBuffer, readChunks, readsDirectly, stopReading } from '../../lib/net/reader.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, recordingHandler, silent, startServer, until, type Received } from '../helpers/server.js';

const servers = new Set<Server>();

afterEach(async () => {
  await closeServers();
  await Promise.all([...servers].map((s) => new Promise((r) => s.close(r))));
  servers.clear();
});

interface Accepted {
  readonly socket: Socket;
  readonly chunks: Buffer[];
}

/** A bare net server whose connections are read by `readChunks`; resolves with its port. */
async function readingServer(direct: boolean, onAccepted: (accepted: Accepted) => void): Promise<number> {
  const server = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('error', () => undefined);
    readChunks(socket, { onChunk: (chunk) => chunks.push(chunk) }, direct);
    onAccepted({ socket, chunks });
  });
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One client connected to a fresh {@link readingServer}, and the server's side of it. */
async function connected(direct: boolean): Promise<{ client: Socket; server: Accepted }> {
  let server: Accepted | undefined;
  const client = await open(await readingServer(direct, (accepted) => (server = accepted)));
  await until(() => server !== undefined);
  return { client, server: server as Accepted };
}

async function open(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Bytes 0..n-1 of a pattern that differs from one position to the next. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

describe.each([
  ['direct', true],
  ['stream', false],
] as const)('reading a socket (%s)', (mode, direct) => {
  it('reads the way it was asked to', async () => {
    const { client, server } = await connected(direct);
    expect(readsDirectly(server.socket)).toBe(mode === 'direct');
    client.destroy();
  });

  it('hands over every byte of two interleaved clients, in Buffers that later reads do not overwrite', async () => {
    const received: Buffer[][] = [];
    const port = await readingServer(direct, ({ chunks }) => received.push(chunks));
    const a = await open(port);
    const b = await open(port);
    await until(() => received.length === 2);
    const sentA = pattern(300_000, 1);
    const sentB = pattern(300_000, 2);
    // Alternate pieces of different sizes so reads of both sockets interleave.
    for (let offset = 0, i = 0; offset < sentA.length; i++) {
      const size = [1, 7, 1000, 70_000][i % 4] ?? 1;
      a.write(sentA.subarray(offset, offset + size));
      b.write(sentB.subarray(offset, offset + size));
      offset += size;
    }
    const total = (chunks: Buffer[] | undefined): number => (chunks ?? []).reduce((n, c) => n + c.length, 0);
    await until(() => total(received[0]) === sentA.length && total(received[1]) === sentB.length);
    const got = received.map((chunks) => Buffer.concat(chunks));
    // Which server-side socket is which client depends on accept order: compare as a set.
    expect(got.map((g) => g.equals(sentA) || g.equals(sentB))).toEqual([true, true]);
    expect(got[0]?.equals(got[1] ?? Buffer.alloc(0))).toBe(false);
    a.destroy();
    b.destroy();
  });

  it('stops delivering while paused and starts again on resume', async () => {
    const { client, server: s } = await connected(direct);
    s.socket.pause();
    client.write('while paused\r\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(s.chunks).toEqual([]);
    s.socket.resume();
    await until(() => Buffer.concat(s.chunks).toString() === 'while paused\r\n');
    client.destroy();
  });

  it('ends and closes when the client ends', async () => {
    const { client, server: s } = await connected(direct);
    const closed = new Promise<void>((resolve) => s.socket.once('close', () => resolve()));
    client.end('last words');
    await closed;
    expect(Buffer.concat(s.chunks).toString()).toBe('last words');
  });

  it('stops delivering once told to stop reading', async () => {
    const { client, server } = await connected(direct);
    client.write('before\r\n');
    await until(() => server.chunks.length === 1);
    stopReading(server.socket);
    client.write('after\r\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(Buffer.concat(server.chunks).toString()).toBe('before\r\n');
    client.destroy();
  });
});

describe('giving read buffers back', () => {
  /**
   * A server whose reader copies each chunk, then (once the read is over, reading paused
   * meanwhile, as a reader done with the chunk would) gives back the memory `giving` names.
   */
  async function givingServer(
    giving: (socket: Socket, chunk: Buffer) => readonly [Socket, ArrayBufferLike][],
  ): Promise<{ port: number; got: Buffer[]; backings: Set<ArrayBufferLike>; large: () => number }> {
    const got: Buffer[] = [];
    /** The memory of the reads too large for Node's shared pool of small buffers. */
    const backings = new Set<ArrayBufferLike>();
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      const onChunk = (chunk: Buffer): void => {
        got.push(Buffer.from(chunk));
        if (chunk.length > Buffer.poolSize / 2) backings.add(chunk.buffer);
        const given = giving(socket, chunk);
        socket.pause();
        setImmediate(() => {
          for (const [to, backing] of given) giveBack(to, backing);
          socket.resume();
        });
      };
      readChunks(socket, { onChunk });
    });
    servers.add(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return { port: address.port, got, backings, large: () => got.filter((c) => c.length > Buffer.poolSize / 2).length };
  }

  it('reads into the buffers given back instead of new ones, every byte intact', async () => {
    // Reads of message data go into buffers of the socket's own; a short read puts the socket
    // back on the shared buffer and ends a run of them. Within a run, given back after each
    // read, two buffers take turns: each run makes at most two, however long it is.
    const own = new Set<ArrayBufferLike>();
    let ownReads = 0;
    let runs = 0;
    let inRun = false;
    const { port, got } = await givingServer((socket, chunk) => {
      const mine = isReadBuffer(socket, chunk.buffer);
      if (mine && !inRun) runs++;
      inRun = mine;
      if (mine) {
        ownReads++;
        own.add(chunk.buffer);
      }
      return [[socket, chunk.buffer]];
    });
    const client = await open(port);
    try {
      const sent = pattern(8 * 1024 * 1024, 3);
      client.write(sent);
      await until(() => got.reduce((n, c) => n + c.length, 0) === sent.length, 10_000);
      expect(Buffer.concat(got).equals(sent)).toBe(true);
      expect(own.size).toBeLessThanOrEqual(2 * runs);
      // Without reuse every read of its own would be memory of its own.
      expect(own.size).toBeLessThan(ownReads);
    } finally {
      client.destroy();
    }
  });

  it('takes back only its own read buffers, from the socket they were made for', async () => {
    let first: Socket | undefined;
    const foreign = new ArrayBuffer(64 * 1024);
    const owned: boolean[] = [];
    const { port, got, backings, large } = await givingServer((socket, chunk) => {
      first ??= socket;
      owned.push(isReadBuffer(socket, chunk.buffer));
      // Given to the first socket, or memory the reader never made: neither is read into.
      return socket === first ? [[socket, foreign]] : [[first, chunk.buffer]];
    });
    const total = (): number => got.reduce((n, c) => n + c.length, 0);
    const one = await open(port);
    try {
      one.write('x');
      await until(() => got.length === 1);
      const two = await open(port);
      const sent = pattern(4 * 1024 * 1024, 4);
      try {
        two.write(sent);
        await until(() => total() === sent.length + 1, 10_000);
      } finally {
        two.destroy();
      }
      one.write(sent);
      await until(() => total() === 2 * sent.length + 1, 10_000);
      expect(owned.some((o) => o)).toBe(true);
      // Nothing was reused: every read in memory of its own.
      expect(backings.size).toBe(large());
    } finally {
      one.destroy();
    }
  });
});

describe('falling back to the stream', () => {
  it("reads a socket that already has Node's onread option through its own callback, untouched", async () => {
    const server = createServer((socket) => socket.end('hello\r\n'));
    servers.add(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const own = Buffer.alloc(64);
    const seen: string[] = [];
    const socket = connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: own,
        callback: (n: number, buf: Uint8Array) => {
          seen.push(Buffer.from(buf.subarray(0, n)).toString());
          return true;
        },
      },
    });
    const chunks: Buffer[] = [];
    readChunks(socket, { onChunk: (chunk) => chunks.push(chunk) });
    expect(readsDirectly(socket)).toBe(false);
    await new Promise((resolve) => socket.once('close', resolve));
    expect(seen.join('')).toBe('hello\r\n');
  });
});

describe.each([
  ['direct', true],
  ['stream', false],
] as const)('an SMTP session (%s reads)', (_mode, direct) => {
  let certs: TestCertificates;
  beforeAll(() => {
    certs = makeCertificates();
  });
  afterAll(() => certs.cleanup());

  it('reads the way the directReads setting says', async () => {
    const app = new Application(RequestHandler, { hostname: 'mx.test', logger: silent, directReads: direct });
    const smtp = new SMTPServer(app);
    const net = createServer();
    const accepted: Socket[] = [];
    smtp.addSockets([net]);
    // Runs after the server's own listener, once the connection has started reading.
    net.on('connection', (socket: Socket) => accepted.push(socket));
    await new Promise<void>((resolve) => net.listen(0, '127.0.0.1', resolve));
    const address = net.address();
    const c = await RawClient.greeted(typeof address === 'object' && address !== null ? address.port : 0);
    expect(accepted.map((socket) => readsDirectly(socket))).toEqual([direct]);
    c.close();
    await smtp.close();
  });

  it('takes pipelined commands and a body written a byte at a time and in large pieces', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received), { directReads: direct });
    const c = await RawClient.greeted(port);
    const line = `${'x'.repeat(76)}\r\n`;
    const big = line.repeat(2000);
    c.write(`EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n`);
    expect(await c.reply()).toContain('250 ENHANCEDSTATUSCODES\r\n');
    expect(await c.reply()).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.reply()).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    for (const byte of Buffer.from('Subject: t\r\n\r\n..dot\r\n')) c.write(Buffer.of(byte));
    c.write(`${big}.\r\nNOOP\r\n`);
    expect(await c.reply()).toMatch(/^250 2\.0\.0 Ok: queued as [A-Z0-9]+\r\n$/);
    expect(await c.reply()).toBe('250 2.0.0 Ok\r\n');
    expect(received[0]?.body.toString()).toBe(`Subject: t\r\n\r\n.dot\r\n${big}`);
    c.close();
  });

  it("keeps what waits behind a running hook intact while other clients' reads land in the shared read buffer", async () => {
    const received: Received[] = [];
    class SlowRcpt extends RequestHandler {
      override async rcpt(): Promise<void> {
        await new Promise((r) => setTimeout(r, 30));
      }
      override data(): void {
        received.push({ mailFrom: this.request.mailFrom, rcptTos: [...this.request.rcptTos], body: this.request.body });
      }
    }
    const { port } = await startServer(SlowRcpt, { directReads: direct });
    const [a, b] = await Promise.all([RawClient.greeted(port), RawClient.greeted(port)]);
    expect(await a.command('EHLO a.test')).toContain('CHUNKING\r\n');
    expect(await b.command('EHLO b.test')).toContain('CHUNKING\r\n');
    // One read each: every command after the first RCPT waits for its hook, as does a BDAT chunk with its payload.
    a.write('MAIL FROM:<a@a.test>\r\nRCPT TO:<one@a.test>\r\nRCPT TO:<two@a.test>\r\nDATA\r\nfrom a\r\n.\r\nNOOP\r\n');
    b.write('MAIL FROM:<b@b.test>\r\nRCPT TO:<one@b.test>\r\nBDAT 6 LAST\r\nfrom bRSET\r\n');
    // Meanwhile other reads keep writing over the shared buffer.
    const noise = await RawClient.greeted(port);
    for (let i = 0; i < 20; i++) expect(await noise.command(`NOOP ${'x'.repeat(i * 7)}`)).toBe('250 2.0.0 Ok\r\n');
    expect([await a.reply(), await a.reply(), await a.reply(), await a.reply()]).toEqual([
      '250 2.1.0 Sender ok\r\n',
      '250 2.1.5 Recipient ok\r\n',
      '250 2.1.5 Recipient ok\r\n',
      '354 End data with <CR><LF>.<CR><LF>\r\n',
    ]);
    expect(await a.reply()).toMatch(/^250 2\.0\.0 Ok: queued as [A-Z0-9]+\r\n$/);
    expect(await a.reply()).toBe('250 2.0.0 Ok\r\n');
    expect([await b.reply(), await b.reply()]).toEqual(['250 2.1.0 Sender ok\r\n', '250 2.1.5 Recipient ok\r\n']);
    expect(await b.reply()).toMatch(/^250 2\.0\.0 Ok: queued as [A-Z0-9]+\r\n$/);
    expect(await b.reply()).toBe('250 2.0.0 Ok\r\n');
    const byFrom = Object.fromEntries(received.map((r) => [r.mailFrom, [r.rcptTos, r.body.toString()]]));
    expect(byFrom).toEqual({ 'a@a.test': [['one@a.test', 'two@a.test'], 'from a\r\n'], 'b@b.test': [['one@b.test'], 'from b'] });
    for (const c of [a, b, noise]) c.close();
  });

  it('upgrades with STARTTLS, dropping what was pipelined behind it', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received), { directReads: direct, tls: { key: certs.key, cert: certs.cert } });
    const c = await RawClient.greeted(port);
    expect(await c.command('EHLO c.test')).toContain('250 STARTTLS\r\n');
    c.write('STARTTLS\r\nMAIL FROM:<injected@b.test>\r\n');
    expect(await c.reply()).toBe('220 2.0.0 Ready to start TLS\r\n');
    await c.startTls({ ca: certs.ca, servername: 'localhost' });
    expect(await c.command('EHLO c.test')).toContain('250 REQUIRETLS\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    expect(await c.command('secret\r\n.')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(received.map((r) => [r.mailFrom, r.body.toString()])).toEqual([['a@b.test', 'secret\r\n']]);
    c.close();
  });
});
