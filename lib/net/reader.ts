/**
 * How a connection reads its socket. Every read is handed to its sink's `onChunk` as a Buffer of
 * its own, which the connection may keep as long as it likes, unless the sink takes it as a loan
 * ({@link ChunkSink.lend}) for the time of one call.
 *
 * A plain TCP or Unix socket is read *directly*: the kernel writes into one read buffer shared by
 * every connection of the process, and each read is copied out into a right-sized Buffer (from
 * Node's buffer pool when it is small) before `onChunk` runs, or lent to a sink that handles it
 * within the call. This is the mechanism behind Node's
 * documented `onread` socket option, which Node offers only for sockets the program creates
 * itself, not for the ones a server accepts; this module switches it on for an accepted socket.
 * It saves, on every read, the 64 KiB allocation Node makes for the read and the readable
 * stream's bookkeeping: about a tenth of the server's CPU per message when clients send small
 * commands one at a time (bench/README.md).
 *
 * Message data comes in reads of tens of KiB: after such a read the socket reads into a buffer of
 * its own, which is handed over whole after each read (no copy, as in Node's own read path) and
 * replaced through Node's `kBufferGen` slot; the first short read puts it back on the shared one.
 *
 * It uses things Node does not document: the socket's `_handle.useUserBuffer()` and the socket's
 * own `kBuffer`/`kBufferCb`/`kBufferGen` slots, which Node's `onread` option fills. They are
 * checked on every socket (without `kBufferGen`, every read is copied); when either is missing (another Node version, a TLS socket, a socket someone
 * else reads) the connection reads through the stream's `'data'` event instead, with the same
 * behaviour. The `directReads` setting turns the direct path off.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/**
 * Where a socket's reads go: `onChunk` gets the bytes of each read, in a Buffer nobody else writes
 * to. An object, not a function, so a connection that is its own sink costs no closure for it.
 */
export interface ChunkSink {
  onChunk(chunk: Buffer): void;
  /**
   * Optional: offered each read of the direct path that landed in the shared read buffer, as a
   * loan of its first `length` bytes, valid only until the call returns (the buffer is written
   * over by the next read of any socket; the bytes after `length` are the sink's to write). The
   * sink returns whether it took the loan, copying whatever it keeps; if not, the read is copied
   * out and handed to `onChunk`. A connection handles most command lines within the call, so
   * their reads are never copied and no Buffer is made for them.
   */
  lend?(read: Buffer, length: number): boolean;
}

/** Bytes the kernel may write per read: what Node's own read path asks for. */
const READ_BUFFER_SIZE = 64 * 1024;
/** A command line is a few dozen bytes: copying it byte by byte costs less than making a view for `set`. */
const SHORT_COPY = 64;
/**
 * A read at least this long is message data: the socket then reads into a buffer of its own,
 * handed over whole after each read instead of copied, as Node's own read path does.
 */
const BIG_READ = 16 * 1024;
/** Where a socket keeps the sink {@link readChunks} gave it. */
const LISTENER = Symbol('sirocco.chunkSink');
/** Where a socket read through its `'data'` event keeps that listener, for {@link stopReading}. */
const ON_DATA = Symbol('sirocco.dataListener');
/** Where a socket keeps the read buffers given back to it ({@link giveBack}), for its next reads. */
const SPARES = Symbol('sirocco.spareReadBuffers');
/** Read buffers a socket keeps for reuse: what a lending reader has in flight at a time, and some. */
const MAX_SPARES = 8;

type Slots = { readonly buffer: symbol; readonly callback: symbol; readonly generator: symbol | undefined };
type ReadSocket = Socket & {
  [LISTENER]?: ChunkSink | undefined;
  [ON_DATA]?: ((chunk: Buffer) => void) | undefined;
  [SPARES]?: Buffer[] | undefined;
} & Record<symbol, unknown>;

let shared: Buffer | undefined;
/** The shared buffer's memory (it starts at its offset 0). */
let sharedMemory: ArrayBuffer | undefined;
let slots: Slots | null | undefined;
/** The buffer the socket that just read reads into next; Node asks {@link nextReadBuffer} right after {@link deliver}. */
let next: Buffer | null = null;
/** The read buffers of the sockets' own, each with the socket it was made for: only those may be given back. */
const madeFor = new WeakMap<ArrayBufferLike, ReadSocket>();

/**
 * Starts delivering the socket's reads to `sink`, until {@link stopReading}: directly when
 * `direct` is on and the socket allows it, else through its `'data'` event.
 */
export function readChunks(socket: Socket, sink: ChunkSink, direct = true): void {
  const s = socket as ReadSocket;
  s[LISTENER] = sink;
  if (direct && attachDirect(s)) return;
  const onData = (chunk: Buffer): void => sink.onChunk(chunk);
  s[ON_DATA] = onData;
  socket.on('data', onData);
}

/** Stops delivering the socket's reads (before a TLS upgrade takes the socket over). */
export function stopReading(socket: Socket): void {
  const s = socket as ReadSocket;
  s[LISTENER] = undefined;
  const onData = s[ON_DATA];
  s[ON_DATA] = undefined;
  if (onData !== undefined) socket.off('data', onData);
}

/** Whether the socket is read directly (for tests). */
export function readsDirectly(socket: Socket): boolean {
  const found = findSlots(socket);
  return found !== null && (socket as ReadSocket)[found.callback] === deliver;
}

function attachDirect(socket: ReadSocket): boolean {
  if (socket instanceof TLSSocket) return false;
  const handle = (socket as { _handle?: { useUserBuffer?: unknown } | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  const found = findSlots(socket);
  // Missing, or someone else already reads this socket their own way.
  if (found === null || socket[found.buffer] !== null || socket[found.callback] !== null) return false;
  if (shared === undefined) {
    shared = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
    sharedMemory = shared.buffer as ArrayBuffer;
  }
  const buffer = shared;
  socket[found.buffer] = buffer;
  socket[found.callback] = deliver;
  // Node's `kBufferGen` slot, when this Node has it and nobody uses it: deliver() may then swap buffers.
  if (found.generator !== undefined && Object.hasOwn(socket, found.generator) && socket[found.generator] === null) {
    socket[found.generator] = nextReadBuffer;
  }
  (handle.useUserBuffer as (b: Buffer) => void).call(handle, buffer);
  return true;
}

/**
 * Node calls this on the socket with the length of each read. One function serves every socket,
 * so a connection costs no closure of its own. The shared buffer is overwritten by the next read
 * of any socket: the bytes are copied out first, unless the sink takes them as a loan for the call.
 */
function deliver(this: ReadSocket, length: number, read: Uint8Array): void {
  const sink = this[LISTENER];
  if (sink === undefined) return;
  let chunk: Buffer;
  const swaps = slots?.generator !== undefined && this[slots.generator] === nextReadBuffer;
  if (length >= BIG_READ && swaps) {
    // Message data. A buffer of the socket's own is handed over as it is; the shared one is
    // copied out, once. Either way the next read goes into a new buffer of the socket's own.
    chunk = read === shared ? copyOut(read, length) : Buffer.from(read.buffer, read.byteOffset, length);
    next = this[SPARES]?.pop() ?? ownReadBuffer(this);
  } else if (read === shared && sink.lend?.(shared, length) === true) {
    return;
  } else {
    chunk = copyOut(read, length);
    // Commands again: back to the shared buffer, so an idle connection holds none of its own.
    if (swaps && read !== shared && shared !== undefined) {
      next = shared;
      this[SPARES] = undefined;
    }
  }
  sink.onChunk(chunk);
}

function ownReadBuffer(socket: ReadSocket): Buffer {
  const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  madeFor.set(buffer.buffer, socket);
  return buffer;
}

/**
 * Whether `backing` is one of the socket's own read buffers, handed over whole by a read: the
 * one kind of memory {@link giveBack} takes.
 */
export function isReadBuffer(socket: Socket, backing: ArrayBufferLike): boolean {
  return madeFor.get(backing) === socket;
}

/**
 * Whether `backing` is a read buffer of some socket's own (64 KiB, handed over whole by a read
 * of message data): memory a view of it keeps alive whole, whatever size Node's buffer pool has.
 */
export function isAnyReadBuffer(backing: ArrayBufferLike): boolean {
  return backing.byteLength === READ_BUFFER_SIZE && madeFor.has(backing);
}

/**
 * Gives one of the socket's own read buffers back for its next reads, once nothing holds any
 * part of it any more: the caller's promise, which the reader cannot check. A socket keeps a few
 * while it reads message data, none once it reads commands again; the rest go to the garbage
 * collector as before.
 */
export function giveBack(socket: Socket, backing: ArrayBufferLike): void {
  const s = socket as ReadSocket;
  if (madeFor.get(backing) !== s || slots?.generator === undefined) return;
  const current = s[slots.buffer] as Buffer | null;
  if (current === null || current === shared || current.buffer === backing) return;
  const spares = (s[SPARES] ??= []);
  if (spares.length >= MAX_SPARES || spares.some((b) => b.buffer === backing)) return;
  spares.push(Buffer.from(backing));
}

/** Node's `kBufferGen`: the buffer for the socket's next read, when {@link deliver} chose one. */
function nextReadBuffer(): Buffer | null {
  const buffer = next;
  next = null;
  return buffer;
}

function copyOut(read: Uint8Array, length: number): Buffer {
  const chunk = Buffer.allocUnsafe(length);
  if (length <= SHORT_COPY) {
    for (let i = 0; i < length; i++) chunk[i] = read[i] ?? 0;
  } else {
    // A plain Uint8Array over the read, not `read.subarray()`: Buffer's own subarray reads the
    // read's `buffer` and `byteOffset` through generic property loads (bench/README.md), and so
    // does this function for any read but the shared one, whose memory is known.
    chunk.set(
      read === shared && sharedMemory !== undefined
        ? new Uint8Array(sharedMemory, 0, length)
        : new Uint8Array(read.buffer, read.byteOffset, length),
    );
  }
  return chunk;
}

/**
 * The socket's slots for Node's `onread` option, found once by their names and then only checked:
 * they are the same two symbols on every socket of the process.
 */
function findSlots(socket: Socket): Slots | null {
  if (slots === undefined) {
    const byName = new Map(Object.getOwnPropertySymbols(socket).map((sym) => [sym.description, sym]));
    const buffer = byName.get('kBuffer');
    const callback = byName.get('kBufferCb');
    const generator = byName.get('kBufferGen');
    slots = buffer === undefined || callback === undefined ? null : { buffer, callback, generator };
  }
  if (slots === null || !Object.hasOwn(socket, slots.buffer) || !Object.hasOwn(socket, slots.callback)) return null;
  return slots;
}
