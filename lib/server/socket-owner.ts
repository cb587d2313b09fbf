/**
 * The `error` and `close` listeners of a connection's socket: one pair of functions for every
 * connection, each finding its connection on the socket, so a connection makes no closures for
 * them.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/** What the socket's listeners tell the connection. */
export interface SocketOwner {
  /** The connection's logger: a socket error goes there at `debug`. */
  readonly log: Logger;
  /** The socket closed. */
  socketClosed(): void;
}

/** Where a socket keeps its connection. */
const OWNER = Symbol('sirocco.connection');
type OwnedSocket = Socket & { [OWNER]?: SocketOwner };

function onError(this: OwnedSocket, err: Error): void {
  this[OWNER]?.log.debug({ err }, 'socket error');
}

function onClose(this: OwnedSocket): void {
  this[OWNER]?.socketClosed();
}

/** Hands the socket's errors and its close to `owner`. */
export function listenFor(socket: Socket, owner: SocketOwner): void {
  (socket as OwnedSocket)[OWNER] = owner;
  socket.on('error', onError);
  socket.on('close', onClose);
}
