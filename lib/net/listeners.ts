/**
 * Listening, for every protocol of the connection kit: TCP and Unix sockets, servers the program
 * made itself (`addSockets`), the open connections and their graceful close. A Unix socket file
 * left behind by a process that died (kill -9, a crash) is removed before listening, so a restart
 * under a supervisor does not loop on EADDRINUSE; a live socket, or a path that is not a socket,
 * is never touched.
 */
import { chmod, chown, lstat, readFile, unlink } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { acceptWithWholeOptions } from './accept.js';

/**
 * How a Unix socket file is made available to other users.
 *
 * @example
 * ```ts
 * await server.listen('/run/sirocco/lmtp.sock', undefined, { mode: 0o660, group: 'mail' } satisfies UnixSocketOptions);
 * ```
 */
export interface UnixSocketOptions {
  /** The file's mode, such as `0o660`. Default: what the process's umask gives. */
  readonly mode?: number | undefined;
  /** The file's group, by name or number (the process must be allowed to give it). */
  readonly group?: string | number | undefined;
}

/** What a connection of the kit offers its server. */
export interface ServedConnection {
  /** Closes when idle, or once the work under way ends. */
  shutdown(): void;
  /** Drops the connection at once. */
  destroy(): void;
}

export class Listeners {
  readonly #servers: Server[] = [];
  readonly #log: Logger;
  readonly #accept: (socket: Socket, local: LocalEnd | undefined) => void;

  /** `accept` gets each connection, and where it connected to when the listener knows (see {@link LocalEnd}). */
  constructor(log: Logger, accept: (socket: Socket, local: LocalEnd | undefined) => void) {
    this.#log = log;
    this.#accept = accept;
  }

  /**
   * Listens on `port` (0 picks a free one) and `address` (`''` or omitted: every interface, dual
   * stack); a string `port` is a Unix socket path. Resolves once listening.
   */
  async listen(port: number | string, address?: string, unix: UnixSocketOptions = {}): Promise<void> {
    checkPort(port);
    if (typeof port === 'string') await removeStaleSocket(port);
    const server = createServer();
    // Connections are taken from the first moment: in a cluster worker the primary may hand over
    // connections it queued as soon as this worker listens, in the same turn of the event loop.
    let local: LocalEnd | undefined = typeof port === 'string' ? port : undefined;
    server.on('connection', (socket: Socket) => this.#accept(socket, local));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (typeof port === 'string') server.listen(port, done);
      else if (address === undefined || address === '') server.listen(port, done);
      else server.listen(port, address, done);
    });
    server.on('error', (err) => this.#log.error({ err }, 'server error'));
    acceptWithWholeOptions(server);
    local ??= fixedEnd(server);
    this.#servers.push(server);
    if (typeof port === 'string') await shareSocket(port, unix);
  }

  /** Serves connections from servers the program created and made listen itself. */
  add(servers: readonly Server[]): void {
    for (const server of servers) {
      const local = fixedEnd(server);
      server.on('connection', (socket: Socket) =>
        this.#accept(socket, local ?? (socket.remoteAddress === undefined ? pathOf(server) : undefined)),
      );
      server.on('error', (err) => this.#log.error({ err }, 'server error'));
      this.#servers.push(server);
    }
  }

  /** The address of the first listening socket. */
  address(): AddressInfo | string | null {
    return this.#servers[0]?.address() ?? null;
  }

  /** Stops accepting; resolves once every listener has closed (open connections are the caller's). */
  close(): Promise<void> {
    return Promise.all(this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))).then(() => undefined);
  }
}

/**
 * Where a connection arrived, when its listener knows it without asking the kernel: the path of a
 * Unix socket, or the address and port of a listener bound to one address. Only a listener on
 * every interface (`0.0.0.0`, `::`) leaves it to each socket's own `getsockname(2)`, a system
 * call per connection the others save.
 */
export type LocalEnd = string | { readonly address: string; readonly port: number };

/** The address every connection to `server` arrives at, or `undefined` when it depends on the connection. */
function fixedEnd(server: Server): LocalEnd | undefined {
  const address = server.address();
  if (address === null) return undefined;
  if (typeof address === 'string') return address;
  if (address.address === '0.0.0.0' || address.address === '::') return undefined;
  return { address: address.address, port: address.port };
}

/** The path of a server listening on a Unix socket. */
function pathOf(server: Server): string | undefined {
  const address = server.address();
  return typeof address === 'string' ? address : undefined;
}

/** The open connections of a server, and their graceful close. */
export class Connections<C extends ServedConnection> {
  readonly #open = new Set<C>();
  #emptied: (() => void) | undefined;

  get size(): number {
    return this.#open.size;
  }

  add(connection: C): void {
    this.#open.add(connection);
  }

  delete(connection: C): void {
    this.#open.delete(connection);
    if (this.#open.size === 0) this.#emptied?.();
  }

  /** Asks every connection to close, and drops what is left after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#open.size === 0) return;
    const drained = new Promise<void>((resolve) => (this.#emptied = resolve));
    for (const connection of this.#open) connection.shutdown();
    const timer = setTimeout(() => {
      for (const connection of this.#open) connection.destroy();
    }, timeoutMs);
    await drained;
    clearTimeout(timer);
  }
}

/** A port must be 0–65535, or a Unix socket path. */
export function checkPort(port: unknown): void {
  if (typeof port === 'string' ? port === '' : !(Number.isInteger(port) && (port as number) >= 0 && (port as number) <= 65535)) {
    throw new RangeError(`port must be a whole number from 0 to 65535 or a Unix socket path, got ${String(port)}`);
  }
}

/**
 * Removes `path` when it is a socket nobody listens on (a connection to it is refused). Leaves a
 * live socket, and anything that is not a socket, for `listen` to report.
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  const stat = await lstat(path).catch(() => undefined);
  if (stat === undefined || !stat.isSocket()) return false;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
  if (alive) return false;
  await unlink(path).catch(() => undefined);
  return true;
}

/** Gives the socket file its mode and group. */
async function shareSocket(path: string, options: UnixSocketOptions): Promise<void> {
  if (options.group !== undefined) {
    const gid = typeof options.group === 'number' ? options.group : await groupId(options.group);
    await chown(path, -1, gid);
  }
  if (options.mode !== undefined) await chmod(path, options.mode);
}

/** A group's number from its name, as the system's group file gives it. */
async function groupId(name: string): Promise<number> {
  if (/^\d+$/.test(name)) return Number(name);
  const groups = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of groups.split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid !== undefined) return Number(gid);
  }
  throw new Error(`no group named ${name}`);
}
