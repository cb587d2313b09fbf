/**
 * A POP3 server (RFC 1939, CAPA and response codes from RFC 2449, STLS from RFC 2595) over a
 * `Pop3Store`: the Maildir the `Maildir` handler writes, or a test suite's inbox. Users are
 * checked by the same `authenticate` callback as SMTP AUTH, with PLAIN's semantics; one session
 * at a time holds a maildrop; deletions happen at QUIT only.
 */
import { once } from 'node:events';
import { hostname as osHostname } from 'node:os';
import type { Readable } from 'node:stream';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { pino, type Logger } from 'pino';
import { SettingsError } from '../app/settings-schema.js';
import { TrustedPeers } from '../app/trusted-peers.js';
import { AuthFailures } from './auth-failures.js';
import { problemsOf, type Pop3ServerOptions } from './options.js';
import { LineSplitter } from '../protocol/line-splitter.js';
import type { SessionInfo } from '../protocol/session-info.js';
import type { Pop3Maildrop } from './mailbox.js';
import { Pop3Encoder } from './dot-stuffing.js';
import { Pop3Session, type Pop3Action } from './session.js';

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
  readonly #options: Pop3ServerOptions;
  readonly #log: Logger;
  readonly #context: SecureContext | undefined;
  readonly #locks = new Set<string>();
  readonly #connections = new Set<Pop3Connection>();
  readonly #failures: AuthFailures;
  #server: Server | undefined;

  constructor(options: Pop3ServerOptions) {
    const problems = problemsOf(options);
    if (problems.length > 0) throw new SettingsError(problems);
    this.#options = options;
    this.#log = (options.logger ?? pino({ level: process.env.SIROCCO_LOG_LEVEL ?? 'info' })).child({ component: 'pop3' });
    this.#context = options.tls === undefined ? undefined : createSecureContext(options.tls);
    this.#failures = new AuthFailures(
      options.authFailuresPerIp ?? 10,
      options.limitWindow ?? 60_000,
      new TrustedPeers([...(options.limitExempt ?? ['127.0.0.0/8', '::1'])]),
    );
  }

  /** Listens on `port` (0 picks one) and `address`; resolves once listening. */
  async listen(port: number, address?: string): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#log.error({ err }, 'pop3 server error'));
    this.#server = server;
  }

  /** The address listened on. */
  address(): AddressInfo | null {
    const address = this.#server?.address();
    return typeof address === 'object' && address !== null ? address : null;
  }

  /** Stops listening and closes every session (their deletions are not made: no QUIT was sent). */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of this.#connections) connection.destroy();
    await closed;
  }

  #accept(socket: Socket): void {
    socket.on('error', (err) => this.#log.debug({ err }, 'pop3 socket error'));
    if (this.#connections.size >= (this.#options.maxConnections ?? 100)) {
      socket.end('-ERR [SYS/TEMP] Too many connections, try again later\r\n');
      return;
    }
    const connection = new Pop3Connection(socket, {
      options: this.#options,
      log: this.#log,
      context: this.#context,
      locks: this.#locks,
      failures: this.#failures,
      closed: (c) => this.#connections.delete(c),
    });
    this.#connections.add(connection);
    connection.start();
  }
}

interface ConnectionContext {
  readonly options: Pop3ServerOptions;
  readonly log: Logger;
  readonly context: SecureContext | undefined;
  /** Users whose maildrop a session holds (RFC 1939 §8: one session per maildrop). */
  readonly locks: Set<string>;
  readonly failures: AuthFailures;
  closed(connection: Pop3Connection): void;
}

let sessions = 0;

/** One client: lines in, through the session, and the I/O its actions name. */
class Pop3Connection {
  #socket: Socket;
  readonly #c: ConnectionContext;
  readonly #lines: LineSplitter;
  readonly #session: Pop3Session;
  readonly #id = `p${(++sessions).toString(36)}`;
  #busy = false;
  #ended = false;
  #lock: string | undefined;
  #maildrop: Pop3Maildrop | undefined;
  #idle: NodeJS.Timeout | undefined;

  constructor(socket: Socket, c: ConnectionContext) {
    this.#socket = socket;
    this.#c = c;
    this.#lines = new LineSplitter(c.options.maxLineLength ?? 512);
    const implicit = c.options.implicitTLS === true;
    this.#session = new Pop3Session({
      hostname: c.options.hostname ?? osHostname(),
      tlsAvailable: c.context !== undefined,
      secure: implicit,
      requireTls: c.options.allowInsecureAuth !== true,
    });
  }

  start(): void {
    const raw = this.#socket;
    raw.once('close', () => this.#closed());
    if (this.#c.options.implicitTLS === true && this.#c.context !== undefined) {
      this.#upgrade(() => this.#greet());
      return;
    }
    this.#read(raw);
    this.#greet();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #greet(): void {
    this.#write([this.#session.greeting()]);
    this.#touch();
  }

  #read(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#lines.push(chunk);
      this.#pump();
    });
  }

  #touch(): void {
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      this.#write(['-ERR Idle timeout, closing connection']);
      this.#end();
    }, this.#c.options.idleTimeout ?? 600_000);
    this.#idle.unref();
  }

  #pump(): void {
    while (!this.#busy && !this.#ended) {
      const event = this.#lines.next();
      if (event === undefined) return;
      this.#touch();
      const action = event.kind === 'tooLong' ? this.#session.tooLong() : this.#session.line(event.line.toString('utf8'));
      this.#act(action);
    }
  }

  #act(action: Pop3Action): void {
    switch (action.kind) {
      case 'reply':
        this.#write(action.lines);
        return;
      case 'close':
        this.#write(action.lines);
        this.#end();
        return;
      case 'authenticate':
        this.#wait(this.#authenticate(action.user, action.password));
        return;
      case 'retrieve':
        this.#wait(this.#retrieve(action.uid, action.size, action.bodyLines));
        return;
      case 'update':
        this.#wait(this.#update(action.deleted));
        return;
      case 'stls':
        this.#write(['+OK Begin TLS negotiation now']);
        // Whatever the client sent after STLS in plaintext is dropped (RFC 2595 §4).
        this.#lines.takeAll();
        this.#busy = true;
        this.#socket.removeAllListeners('data');
        this.#upgrade(() => {
          this.#session.secured();
          this.#busy = false;
        });
        return;
    }
  }

  /** Runs an action's I/O; commands wait meanwhile. */
  #wait(work: Promise<Pop3Action>): void {
    this.#busy = true;
    work
      .catch((err: unknown) => {
        this.#c.log.error({ err, session: this.#id }, 'pop3 action failed');
        return { kind: 'close', lines: ['-ERR [SYS/TEMP] Internal error, closing connection'] } as const;
      })
      .then((next) => {
        this.#busy = false;
        this.#act(next);
        this.#pump();
      })
      .catch(() => undefined);
  }

  async #authenticate(user: string, password: string): Promise<Pop3Action> {
    const socket = this.#socket;
    const address = socket.remoteAddress ?? '';
    if (this.#c.failures.over(address)) {
      this.#c.log.warn({ session: this.#id, remote: address }, 'pop3 login refused: too many failures from this address');
      return { kind: 'close', lines: ['-ERR [AUTH] Too many authentication failures from your address, try again later'] };
    }
    const info: SessionInfo = {
      id: this.#id,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      heloName: '',
      esmtp: false,
      secure: socket instanceof TLSSocket,
      tls: undefined,
      user: undefined,
    };
    let decision: unknown;
    try {
      decision = await this.#c.options.authenticate({ mechanism: 'PLAIN', username: user, password, authzid: undefined }, info);
    } catch (err) {
      this.#c.log.error({ err, session: this.#id }, 'pop3 authenticate failed');
      return this.#session.authFailed('temporary');
    }
    const name = decision === true ? user : typeof decision === 'string' && decision !== '' ? decision : undefined;
    if (name === undefined) {
      this.#c.failures.count(address);
      this.#c.log.info({ session: this.#id, user, remote: info.remoteAddress }, 'pop3 login refused');
      return this.#session.authFailed('invalid');
    }
    const key = name.toLowerCase();
    if (this.#c.locks.has(key)) return this.#session.authFailed('in-use');
    this.#c.locks.add(key);
    this.#lock = key;
    try {
      this.#maildrop = await this.#c.options.store.open(name);
    } catch (err) {
      this.#c.log.error({ err, session: this.#id, user: name }, 'pop3 maildrop could not be opened');
      this.#unlock();
      return this.#session.authFailed('temporary');
    }
    this.#c.log.info({ session: this.#id, user: name, messages: this.#maildrop.messages.length }, 'pop3 login');
    return this.#session.authenticated(this.#maildrop.messages);
  }

  /**
   * RETR and TOP: the message streamed through the dot-stuffing encoder, at the pace the client
   * reads. A message that cannot be opened is `-ERR`; one that fails half way ends the session,
   * as a multi-line response cannot be taken back.
   */
  async #retrieve(uid: string, size: number, bodyLines: number | undefined): Promise<Pop3Action> {
    let source: Readable;
    try {
      source = await (this.#maildrop as Pop3Maildrop).read(uid);
    } catch (err) {
      this.#c.log.warn({ err, session: this.#id }, 'pop3 message could not be read');
      return { kind: 'reply', lines: ['-ERR [SYS/TEMP] The message cannot be read now'] };
    }
    const socket = this.#socket;
    const encoder = new Pop3Encoder(bodyLines);
    const send = async (bytes: Buffer): Promise<void> => {
      if (bytes.length > 0 && !socket.write(bytes)) await once(socket, 'drain');
    };
    try {
      await send(Buffer.from(`+OK ${bodyLines === undefined ? `${size} octets` : 'top of message follows'}\r\n`));
      for await (const part of source) await send(encoder.push(part as Buffer));
      await send(encoder.end());
    } catch (err) {
      source.destroy();
      this.#c.log.error({ err, session: this.#id }, 'pop3 message failed while it was sent');
      return { kind: 'close', lines: [] };
    }
    return { kind: 'reply', lines: [] };
  }

  async #update(deleted: readonly string[]): Promise<Pop3Action> {
    let ok = true;
    if (deleted.length > 0) {
      try {
        await (this.#maildrop as Pop3Maildrop).remove(deleted);
      } catch (err) {
        this.#c.log.error({ err, session: this.#id }, 'pop3 deletions failed');
        ok = false;
      }
    }
    this.#unlock();
    return this.#session.updated(ok);
  }

  #upgrade(then: () => void): void {
    const tls = new TLSSocket(this.#socket, { isServer: true, secureContext: this.#c.context });
    tls.on('error', (err) => {
      this.#c.log.info({ err, session: this.#id }, 'pop3 TLS handshake failed');
      tls.destroy();
    });
    tls.once('secure', () => {
      this.#socket = tls;
      this.#read(tls);
      then();
      this.#pump();
    });
  }

  #write(lines: readonly string[]): void {
    if (lines.length === 0 || this.#socket.destroyed) return;
    this.#socket.write(`${lines.join('\r\n')}\r\n`);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#idle);
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 5000).unref();
  }

  #unlock(): void {
    if (this.#lock !== undefined) this.#c.locks.delete(this.#lock);
    this.#lock = undefined;
  }

  #closed(): void {
    this.#ended = true;
    clearTimeout(this.#idle);
    this.#unlock();
    this.#c.closed(this);
  }
}
