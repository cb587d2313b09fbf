/**
 * A POP3 server (RFC 1939, CAPA and response codes from RFC 2449, STLS from RFC 2595) over a
 * `Pop3Store`: the Maildir the `Maildir` handler writes, or a test suite's inbox. It is served by
 * the same connection kit as SMTP (listening, per-client limits, the write path with its
 * back-pressure, the idle clock, the TLS upgrade); this file only joins them to the store. One
 * session at a time holds a maildrop; deletions happen at QUIT only.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { MemoryLimitStore } from '../app/limit-store.js';
import { TrustedPeers } from '../app/trusted-peers.js';
import { ClientLimits } from '../net/client-limits.js';
import { Connections, Listeners, type LocalEnd, type UnixSocketOptions } from '../net/listeners.js';
import { TLSConfig } from '../net/tls.js';
import { Pop3Connection, type Pop3Context } from './connection.js';
import { pop3Settings, type Pop3ServerOptions } from './options.js';

/**
 * Serves POP3 beside (or without) an SMTP server.
 *
 * @example
 * ```ts
 * const pop3 = new Pop3Server({ store: new MaildirStore('./mail', { perUser: true }), authenticate, tls: { key, cert } });
 * await pop3.listen(1110, '127.0.0.1');
 * // … later
 * await pop3.close();
 * ```
 */
export class Pop3Server {
  readonly #context: Pop3Context;
  readonly #maxConnections: number;
  readonly #listeners: Listeners;
  readonly #connections = new Connections<Pop3Connection>();
  #closing = false;

  constructor(options: Pop3ServerOptions) {
    const settings = pop3Settings(options);
    const log: Logger = (settings.logger ?? pino({ level: process.env.SIROCCO_LOG_LEVEL ?? 'info' })).child({ component: 'pop3' });
    this.#maxConnections = settings.maxConnections;
    this.#context = {
      store: settings.store,
      authenticate: (credentials, client) => settings.authenticate(credentials, client),
      hostname: settings.hostname,
      tls: settings.tls === undefined ? undefined : new TLSConfig(settings.tls, false),
      implicitTLS: settings.implicitTLS,
      allowInsecureAuth: settings.allowInsecureAuth,
      idleTimeout: settings.idleTimeout,
      handshakeTimeout: settings.handshakeTimeout,
      maxLineLength: settings.maxLineLength,
      maxBufferedBytes: settings.maxBufferedBytes,
      limits: new ClientLimits(
        settings.limitStore ?? new MemoryLimitStore(),
        settings,
        new TrustedPeers([...settings.limitExempt]),
        'pop3',
      ),
      log,
      locks: new Set(),
    };
    this.#listeners = new Listeners(log, (socket, local) => this.#accept(socket, local));
  }

  /** Listens on `port` (0 picks one) and `address`, or on a Unix socket path; resolves once listening. */
  listen(port: number | string, address?: string, unix?: UnixSocketOptions): Promise<void> {
    return this.#listeners.listen(port, address, unix);
  }

  /** Serves connections from servers you created and made listen yourself. */
  addSockets(servers: readonly Server[]): void {
    this.#listeners.add(servers);
  }

  /** The address listened on. */
  address(): AddressInfo | null {
    const address = this.#listeners.address();
    return typeof address === 'object' && address !== null ? address : null;
  }

  /** Stops listening and closes every session (their deletions are not made: no QUIT was sent). */
  async close(): Promise<void> {
    this.#closing = true;
    const stopped = this.#listeners.close();
    await this.#connections.drain(1000);
    await stopped;
  }

  #accept(socket: Socket, local: LocalEnd | undefined): void {
    const connection = new Pop3Connection(socket, this.#context, local, (c) => this.#connections.delete(c));
    this.#connections.add(connection);
    if (this.#closing) connection.turnAway('-ERR [SYS/TEMP] Server shutting down');
    else if (this.#connections.size > this.#maxConnections) connection.turnAway('-ERR [SYS/TEMP] Too many connections, try again later');
    else connection.start();
  }
}
