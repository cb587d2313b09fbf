/**
 * Accepting a connection on Node 20 without a cost its JavaScript engine adds to each one.
 *
 * Node's server makes each accepted socket with `new Socket({ handle, allowHalfOpen, … })`, and
 * the Socket constructor copies those options (`{ ...options }`) and then adds four properties
 * to the copy (`emitClose`, `autoDestroy`, `decodeStrings`, and `allowHalfOpen` again). In V8
 * 11.3 (Node 20), once that code is optimized, adding a property to such a copy makes an object
 * shape of its own for every connection: each of the two dozen option reads that follow in
 * Node's stream constructors then misses V8's lookup cache and takes the engine's slow path,
 * about 60k instructions per connection, nearly a third of all that Sirocco spends on one
 * (bench/README.md). V8 12 (Node 22 and later) shares the shape and needs nothing.
 *
 * On V8 before 12, the listeners Sirocco makes accept through {@link acceptWithWholeOptions}: the
 * same steps as Node's own accept, with options that already hold the four properties, so the
 * constructor's writes change values and never the shape. Anything unusual (an accept error, a
 * server at its `maxConnections`, `noDelay` or `keepAlive` set on the server, a handle that is
 * not Node's) goes through Node's own accept as before.
 */
import { channel } from 'node:diagnostics_channel';
import { Socket, type Server } from 'node:net';

/** Whether this JavaScript engine needs it: V8 before 12 (Node 20). */
const NEEDED = Number(process.versions.v8.split('.')[0]) < 12;
/** Node publishes each accepted socket here; so does the accept below. */
const SERVER_SOCKET = channel('net.server.socket');

type Accept = (this: unknown, err: number, clientHandle: unknown) => void;
type ListenHandle = { onconnection?: unknown };
type ServerState = Server & {
  _handle?: ListenHandle | null;
  _connections: number;
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
  highWaterMark?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
};

/**
 * Makes `server`, which listens, accept its connections with whole options when this Node needs
 * it (see the module's comment). Returns whether it does.
 */
export function acceptWithWholeOptions(server: Server): boolean {
  if (!NEEDED) return false;
  const s = server as ServerState;
  const handle = s._handle;
  const own = handle?.onconnection;
  if (handle === null || handle === undefined || typeof own !== 'function' || own.name !== 'onconnection') return false;
  const nodeAccept = own as Accept;
  const accept: Accept = function (this: unknown, err, clientHandle) {
    if (err !== 0 || (s.maxConnections > 0 && s._connections >= s.maxConnections) || s.noDelay === true || s.keepAlive === true) {
      nodeAccept.call(this, err, clientHandle);
      return;
    }
    const options = {
      handle: clientHandle,
      allowHalfOpen: s.allowHalfOpen === true,
      pauseOnCreate: s.pauseOnConnect === true,
      readable: true,
      writable: true,
      readableHighWaterMark: s.highWaterMark,
      writableHighWaterMark: s.highWaterMark,
      // What the Socket constructor sets on its copy of the options, set here first.
      emitClose: false,
      autoDestroy: true,
      decodeStrings: false,
    };
    const socket = new Socket(options) as Socket & { server: Server; _server: Server };
    s._connections++;
    socket.server = server;
    socket._server = server;
    server.emit('connection', socket);
    if (SERVER_SOCKET.hasSubscribers) SERVER_SOCKET.publish({ socket });
  };
  handle.onconnection = accept;
  return true;
}
