/** Floods a server from a client that never reads, and tells how much of it the server took in. */
import type { Socket } from 'node:net';

const MiB = 1024 * 1024;

/**
 * Writes `unit` repeated into `socket` in 1 MiB pieces, never reading what comes back, until
 * `maxBytes` were written or the server stopped taking them (a piece not drained within
 * `stallMs`). Returns the bytes that left the client: what the server read, plus what the
 * kernel's buffers on the way hold (a few MiB on loopback).
 */
export async function floodUnread(socket: Socket, unit: string | Buffer, maxBytes = 32 * MiB, stallMs = 1000): Promise<number> {
  socket.pause();
  const one = Buffer.from(unit);
  const piece = Buffer.alloc(Math.floor(MiB / one.length) * one.length);
  for (let at = 0; at < piece.length; at += one.length) one.copy(piece, at);
  let written = 0;
  while (written < maxBytes && !socket.destroyed) {
    written += piece.length;
    if (socket.write(piece)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), stallMs);
      socket.once('drain', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!drained) break;
  }
  return written - socket.writableLength;
}

export { MiB };
