/**
 * How a connection reads its socket. Every read is handed to `onChunk` as a Buffer of its own,
 * which the connection may keep as long as it likes.
 *
 * A plain TCP or Unix socket is read *directly*: the kernel writes into one read buffer shared by
 * every connection of the process, and each read is copied out into a right-sized Buffer (from
 * Node's buffer pool when it is small) before `onChunk` runs. This is the mechanism behind Node's
 * documented `onread` socket option, which Node offers only for sockets the program creates
 * itself, not for the ones a server accepts; this module switches it on for an accepted socket.
 * It saves, on every read, the 64 KiB allocation Node makes for the read and the readable
 * stream's bookkeeping: about a tenth of the server's CPU per message when clients send small
 * commands one at a time (bench/README.md).
 *
 * It uses two things Node does not document: the socket's `_handle.useUserBuffer()` and the
 * socket's own `kBuffer`/`kBufferCb` slots, which Node's `onread` option fills. Both are checked
 * on every socket; when either is missing (another Node version, a TLS socket, a socket someone
 * else reads) the connection reads through the stream's `'data'` event instead, with the same
 * behaviour. {@link setDirectReads} turns the direct path off, for tests and for comparison.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/** What a read hands over: the bytes, in a Buffer nobody else writes to. */
export type ChunkListener = (chunk: Buffer) => void;

/** Stops a reader from delivering more chunks (before a TLS upgrade takes the socket over). */
export type Detach = () => void;

/** Bytes the kernel may write per read: what Node's own read path asks for. */
const READ_BUFFER_SIZE = 64 * 1024;

let directReads = true;
let shared: Buffer | undefined;
let slots: { readonly buffer: symbol; readonly callback: symbol } | null | undefined;

/**
 * Turns the direct read path on (the default) or off for sockets attached from now on; off, every
 * socket is read through its `'data'` event. For tests and benchmarks.
 */
export function setDirectReads(on: boolean): void {
  directReads = on;
}

/** Starts delivering the socket's reads to `onChunk`; returns how to stop. */
export function readChunks(socket: Socket, onChunk: ChunkListener): Detach {
  if (directReads && attachDirect(socket, onChunk)) {
    return () => setCallback(socket, ignore);
  }
  socket.on('data', onChunk);
  return () => {
    socket.off('data', onChunk);
  };
}

/** Whether the socket is read directly (for tests). */
export function readsDirectly(socket: Socket): boolean {
  const s = findSlots(socket);
  return s !== null && (socket as unknown as Record<symbol, unknown>)[s.buffer] === shared && shared !== undefined;
}

function attachDirect(socket: Socket, onChunk: ChunkListener): boolean {
  if (socket instanceof TLSSocket) return false;
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: unknown } | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  const s = findSlots(socket);
  if (s === null) return false;
  const own = socket as unknown as Record<symbol, unknown>;
  // Someone else already reads this socket their own way.
  if (own[s.buffer] !== null || own[s.callback] !== null) return false;
  const buffer = (shared ??= Buffer.allocUnsafeSlow(READ_BUFFER_SIZE));
  own[s.buffer] = buffer;
  setCallback(socket, (length: number, read: Uint8Array) => {
    // The shared buffer is overwritten by the next read of any socket: copy the bytes out first.
    onChunk(copyOut(read, length));
  });
  (handle.useUserBuffer as (b: Buffer) => void).call(handle, buffer);
  return true;
}

/** A command line is a few dozen bytes: copying it byte by byte costs less than making a view for `set`. */
const SHORT_COPY = 64;

function copyOut(read: Uint8Array, length: number): Buffer {
  const chunk = Buffer.allocUnsafe(length);
  if (length <= SHORT_COPY) {
    for (let i = 0; i < length; i++) chunk[i] = read[i] ?? 0;
  } else {
    chunk.set(read.subarray(0, length));
  }
  return chunk;
}

function setCallback(socket: Socket, callback: (length: number, read: Uint8Array) => void): void {
  const s = findSlots(socket);
  if (s !== null) (socket as unknown as Record<symbol, unknown>)[s.callback] = callback;
}

function ignore(): void {}

/**
 * The socket's slots for Node's `onread` option, found once by their names and then only checked:
 * they are the same two symbols on every socket of the process.
 */
function findSlots(socket: Socket): { readonly buffer: symbol; readonly callback: symbol } | null {
  if (slots === undefined) {
    const byName = new Map(Object.getOwnPropertySymbols(socket).map((sym) => [sym.description, sym]));
    const buffer = byName.get('kBuffer');
    const callback = byName.get('kBufferCb');
    slots = buffer === undefined || callback === undefined ? null : { buffer, callback };
  }
  if (slots === null || !Object.hasOwn(socket, slots.buffer) || !Object.hasOwn(socket, slots.callback)) return null;
  return slots;
}
