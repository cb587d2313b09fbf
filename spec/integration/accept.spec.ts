/**
 * Accepting with whole options (lib/net/accept.ts): on Node 20 Sirocco's listeners accept their
 * connections themselves, and a socket accepted that way must be the socket Node's own accept
 * makes, whatever the server's options; anything unusual still goes through Node's accept.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect, createServer, type Server, type ServerOpts, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { acceptWithWholeOptions } from '../../lib/net/accept.js';

const NEEDED = Number(process.versions.v8.split('.')[0]) < 12;
const servers = new Set<Server>();
const clients = new Set<Socket>();

afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.clear();
  for (const s of servers) s.emit('test:destroy');
  await Promise.all([...servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  servers.clear();
});

/** A listening loopback server; with `whole`, accepting as Sirocco's listeners do. */
async function listening(options: ServerOpts, whole: boolean): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer(options, (socket) => {
    socket.on('error', () => undefined);
    accepted.push(socket);
  });
  server.on('test:destroy', () => accepted.forEach((socket) => socket.destroy()));
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  if (whole) expect(acceptWithWholeOptions(server)).toBe(NEEDED);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, accepted };
}

async function client(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  clients.add(socket);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return socket;
}

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(predicate()).toBe(true);
}

/** What of an accepted socket its options decide. */
function facts(socket: Socket, server: Server): Record<string, unknown> {
  const s = socket as Socket & {
    server?: unknown;
    _server?: unknown;
    _readableState: Record<string, unknown>;
    _writableState: Record<string, unknown>;
  };
  return {
    server: s.server === server,
    _server: s._server === server,
    allowHalfOpen: socket.allowHalfOpen,
    readableHighWaterMark: socket.readableHighWaterMark,
    writableHighWaterMark: socket.writableHighWaterMark,
    emitClose: [s._readableState.emitClose, s._writableState.emitClose],
    autoDestroy: [s._readableState.autoDestroy, s._writableState.autoDestroy],
    decodeStrings: s._writableState.decodeStrings,
    objectMode: [s._readableState.objectMode, s._writableState.objectMode],
    readable: socket.readable,
    writable: socket.writable,
    remoteAddress: socket.remoteAddress,
  };
}

describe('accepting with whole options', () => {
  it(`takes over the accept on V8 before 12 only (this is V8 ${process.versions.v8}), and once`, async () => {
    const { server } = await listening({}, false);
    const handle = (server as Server & { _handle: { onconnection: { name: string } } })._handle;
    expect(handle.onconnection.name).toBe('onconnection');
    expect(acceptWithWholeOptions(server)).toBe(NEEDED);
    expect(handle.onconnection.name !== 'onconnection').toBe(NEEDED);
    expect(acceptWithWholeOptions(server)).toBe(false);
  });

  it.each<[string, ServerOpts]>([
    ['default options', {}],
    ['allowHalfOpen and a high-water mark', { allowHalfOpen: true, highWaterMark: 1024 }],
    ['pauseOnConnect', { pauseOnConnect: true }],
  ])('makes the socket Node makes (%s)', async (_name, options) => {
    const node = await listening(options, false);
    const whole = await listening(options, true);
    await client(node.port);
    await client(whole.port);
    await until(() => node.accepted.length === 1 && whole.accepted.length === 1);
    const [fromNode] = node.accepted as [Socket];
    const [fromWhole] = whole.accepted as [Socket];
    expect(facts(fromWhole, whole.server)).toEqual(facts(fromNode, node.server));
    expect(fromWhole.readableFlowing).toBe(fromNode.readableFlowing);
    const counted = await new Promise<number>((resolve, reject) =>
      whole.server.getConnections((err, n) => (err === null ? resolve(n) : reject(err))),
    );
    expect(counted).toBe(1);
  });

  it('hands the socket to the connection listeners and the net.server.socket channel, and carries bytes both ways', async () => {
    const published: unknown[] = [];
    const onSocket = (message: unknown): void => void published.push((message as { socket: unknown }).socket);
    subscribe('net.server.socket', onSocket);
    try {
      const { port, accepted } = await listening({}, true);
      const c = await client(port);
      await until(() => accepted.length === 1);
      const [socket] = accepted as [Socket];
      expect(published).toEqual([socket]);
      const echoed = new Promise<string>((resolve) => c.once('data', (d: Buffer) => resolve(d.toString())));
      socket.on('data', (d: Buffer) => socket.write(`got ${d.toString()}`));
      c.write('hello');
      expect(await echoed).toBe('got hello');
    } finally {
      unsubscribe('net.server.socket', onSocket);
    }
  });

  it('keeps a half-open connection open for writing after the client ends, when the server allows it', async () => {
    const { port, accepted } = await listening({ allowHalfOpen: true }, true);
    const c = await client(port);
    await until(() => accepted.length === 1);
    const [socket] = accepted as [Socket];
    const ended = new Promise<void>((resolve) => socket.once('end', resolve));
    socket.resume();
    c.end();
    await ended;
    const late = new Promise<string>((resolve) => c.once('data', (d: Buffer) => resolve(d.toString())));
    socket.end('after your end');
    expect(await late).toBe('after your end');
  });

  it('leaves a server at its maxConnections to Node, which drops the connection and says so', async () => {
    const { server, port, accepted } = await listening({}, true);
    server.maxConnections = 1;
    const dropped: unknown[] = [];
    server.on('drop', (data) => dropped.push(data));
    await client(port);
    await until(() => accepted.length === 1);
    const second = await client(port);
    const closed = new Promise<void>((resolve) => second.once('close', () => resolve()));
    await closed;
    expect(accepted).toHaveLength(1);
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ remoteAddress: '127.0.0.1', localAddress: '127.0.0.1' });
  });

  it('leaves a server with noDelay or keepAlive to Node', async () => {
    for (const options of [{ noDelay: true }, { keepAlive: true, keepAliveInitialDelay: 5000 }] satisfies ServerOpts[]) {
      const { port, accepted } = await listening(options, true);
      await client(port);
      await until(() => accepted.length === 1);
      const [socket] = accepted as [Socket & Record<symbol, unknown>];
      const names = Object.getOwnPropertySymbols(socket).map((sym) => [sym.description, socket[sym]]);
      if ('noDelay' in options) expect(names).toContainEqual(['kSetNoDelay', true]);
      else expect(names).toContainEqual(['kSetKeepAlive', true]);
    }
  });
});
