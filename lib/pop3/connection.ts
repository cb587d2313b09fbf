/**
 * One POP3 client on the connection kit: the same input pump, write path, idle clock, TLS upgrade
 * and per-client limits as an SMTP connection, with the pure {@link Pop3Session} deciding and
 * this file carrying out the I/O its actions name (the password check, the maildrop, RETR).
 */
import type { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { AuthSlot, ClientLimits, Admission } from '../net/client-limits.js';
import { IdleTimer } from '../net/idle-timer.js';
import { DRY, InputPump, type StepResult } from '../net/input-pump.js';
import type { LocalEnd } from '../net/listeners.js';
import { Output } from '../net/output.js';
import { readChunks, type ChunkSink } from '../net/reader.js';
import type { TLSConfig } from '../net/tls.js';
import { upgradeSocket } from '../net/tls-upgrade.js';
import { LineSplitter } from '../protocol/line-splitter.js';
import { clientLabel } from '../protocol/session-info.js';
import { Pop3Encoder } from './encoder.js';
import type { Pop3Maildrop, Pop3Store } from './maildir-store.js';
import type { Pop3Authenticator, Pop3Client } from './options.js';
import { Pop3Session, type Pop3Action } from './session.js';

/** What every POP3 connection of a server shares. */
export interface Pop3Context {
  readonly store: Pop3Store;
  readonly authenticate: Pop3Authenticator;
  readonly hostname: string;
  readonly tls: TLSConfig | undefined;
  readonly implicitTLS: boolean;
  readonly allowInsecureAuth: boolean;
  readonly idleTimeout: number;
  readonly handshakeTimeout: number;
  readonly maxLineLength: number;
  readonly maxBufferedBytes: number;
  readonly limits: ClientLimits;
  readonly log: Logger;
  /** The maildrops a session holds (RFC 1939 §8: one session per maildrop). */
  readonly locks: Set<string>;
}

const INTERNAL_ERROR = '-ERR [SYS/TEMP] Internal error, closing connection';
const CLOSE_INTERNAL: Pop3Action = { kind: 'close', lines: [INTERNAL_ERROR] };

let sessions = 0;

export class Pop3Connection implements ChunkSink {
  readonly id = `p${(++sessions).toString(36)}`;
  readonly #c: Pop3Context;
  readonly #log: Logger;
  readonly #lines: LineSplitter;
  readonly #session: Pop3Session;
  readonly #output: Output;
  readonly #pump: InputPump;
  readonly #onClosed: (connection: Pop3Connection) => void;
  #socket: Socket;
  /** Who the per-client limits count: the client's address, or `null` for a local Unix socket client. */
  readonly #limitsClient: string | null;
  #idle: IdleTimer | undefined;
  #admission: Admission | undefined;
  #upgrading = false;
  #ended = false;
  #closedOnce = false;
  #lock: string | undefined;
  #maildrop: Pop3Maildrop | undefined;
  /** What a RETR in progress reads, closed whenever the connection ends. */
  #source: Readable | undefined;
  /** The socket file a local client connected to, or `undefined` on TCP. */
  readonly #local: LocalEnd | undefined;

  constructor(socket: Socket, context: Pop3Context, local: LocalEnd | undefined, onClosed: (connection: Pop3Connection) => void) {
    this.#socket = socket;
    this.#local = local;
    this.#limitsClient = socket.remoteAddress ?? null;
    this.#c = context;
    this.#onClosed = onClosed;
    this.#log = context.log.child({ session: this.id });
    this.#lines = new LineSplitter(context.maxLineLength);
    this.#session = new Pop3Session({
      hostname: context.hostname,
      tlsAvailable: context.tls !== undefined,
      secure: context.implicitTLS,
      requireTls: !context.allowInsecureAuth,
    });
    this.#output = new Output(socket, { wrote: () => this.#idle?.touch(), drained: () => this.#pump.drained() });
    this.#pump = new InputPump(this.#lines, context.maxBufferedBytes, {
      socket: () => this.#socket,
      running: () => !this.#ended && !this.#upgrading,
      waitingForDrain: () => this.#output.waitingForDrain,
      step: () => this.#step(),
      afterStep: () => undefined,
      failed: (err) => {
        this.#log.error({ err }, 'pop3 connection failed');
        this.#close([INTERNAL_ERROR]);
      },
      flush: () => this.#output.flush(),
      queued: () => this.#output.queued,
    });
  }

  /** The client's address, `''` when unknown. */
  get remoteAddress(): string {
    return this.#socket.remoteAddress ?? '';
  }

  /** Admits the client under the per-client limits, then greets it (after the handshake, for implicit TLS). */
  start(): void {
    const socket = this.#socket;
    // Once, on the plain socket: a TLS socket over it writes to the same one.
    socket.setNoDelay(true);
    socket.on('error', (err) => this.#log.debug({ err }, 'pop3 socket error'));
    socket.on('close', () => this.#closed());
    this.#idle = new IdleTimer(this.#c.idleTimeout, {
      waitingOnServer: () => this.#upgrading,
      idleExpired: () => {
        this.#log.info('pop3 idle timeout');
        this.#close(['-ERR Idle timeout, closing connection']);
      },
    });
    if (this.#c.implicitTLS && this.#c.tls !== undefined) {
      this.#secure(() => this.#pump.run(() => this.#welcome()));
      return;
    }
    this.#attach(socket);
    this.#pump.run(() => this.#welcome());
  }

  /** Turns the client away with one line (the server's connection limit, a server closing). */
  turnAway(line: string): void {
    this.#ended = true;
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => this.#closed());
    this.#output.queue(`${line}\r\n`);
    this.#output.end();
  }

  /** A server closing: the session ends without its deletions (no QUIT was sent). */
  shutdown(): void {
    this.#close(['-ERR [SYS/TEMP] Server shutting down']);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #attach(socket: Socket): void {
    readChunks(socket, this);
  }

  /** One read of the socket (the connection is its own {@link ChunkSink}). */
  onChunk(chunk: Buffer): void {
    if (this.#ended || this.#upgrading) return;
    this.#idle?.touch();
    this.#pump.push(chunk);
  }

  /** The per-client limits, then the greeting. */
  #welcome(): StepResult {
    const address = this.#limitsClient;
    return this.#pump.wait(this.#c.limits.admit(address), (admission) => {
      if ('refusal' in admission) {
        this.#log.info({ client: clientLabel(this.#client()), limit: admission.why }, 'pop3 client over a limit; closing');
        this.#close(['-ERR [SYS/TEMP] Too many connections from your address, try again later']);
        return undefined;
      }
      if (this.#ended) {
        admission.release();
        return undefined;
      }
      this.#admission = admission;
      this.#output.queue(`${this.#session.greeting()}\r\n`);
      return undefined;
    });
  }

  #step(): StepResult {
    const event = this.#lines.next();
    if (event === undefined) return DRY;
    return this.#act(event.kind === 'tooLong' ? this.#session.tooLong() : this.#session.line(event.line.toString('utf8')));
  }

  /** Carries out an action: at once, or a promise the pump waits for (commands wait meanwhile). */
  #act(action: Pop3Action): Promise<void> | undefined {
    switch (action.kind) {
      case 'reply':
        this.#queue(action.lines);
        return undefined;
      case 'close':
        this.#close(action.lines, action.asked === true);
        return undefined;
      case 'authenticate':
        return this.#then(this.#authenticate(action.user, action.password));
      case 'retrieve':
        // The client's silence while it does not read a long response is its own: the idle clock runs.
        return this.#then(this.#retrieve(action.uid, action.size, action.bodyLines), false);
      case 'update':
        return this.#then(this.#update(action.deleted));
      case 'stls':
        this.#queue(['+OK Begin TLS negotiation now']);
        this.#output.flush();
        // Whatever the client sent after STLS in plaintext is dropped (RFC 2595 §4).
        this.#lines.takeAll();
        this.#secure(() => this.#session.secured());
        return undefined;
    }
  }

  #then(work: Promise<Pop3Action>, stopsIdleClock = true): Promise<void> | undefined {
    const guarded = work.catch((err: unknown) => {
      this.#log.error({ err }, 'pop3 action failed');
      return CLOSE_INTERNAL;
    });
    return this.#pump.wait(guarded, (next) => this.#act(next), stopsIdleClock);
  }

  #queue(lines: readonly string[]): void {
    if (lines.length > 0) this.#output.queue(`${lines.join('\r\n')}\r\n`);
  }

  /** The client's facts, as a password check sees them. */
  #client(): Pop3Client {
    const socket = this.#socket;
    return {
      id: this.id,
      protocol: 'pop3',
      remoteAddress: this.remoteAddress,
      remotePort: socket.remotePort ?? 0,
      localAddress: typeof this.#local === 'string' ? this.#local : (this.#local?.address ?? socket.localAddress ?? ''),
      localPort: typeof this.#local === 'object' ? this.#local.port : (socket.localPort ?? 0),
      secure: this.#session.secure,
    };
  }

  async #authenticate(user: string, password: string): Promise<Pop3Action> {
    const slot: AuthSlot | null = await this.#c.limits.authSlot(this.#limitsClient);
    if (slot === null) {
      this.#log.warn({ client: clientLabel(this.#client()) }, 'pop3 login refused: too many failures from this address');
      return { kind: 'close', lines: ['-ERR [AUTH] Too many authentication failures from your address, try again later'] };
    }
    let decision: unknown;
    try {
      decision = await this.#c.authenticate({ mechanism: 'PLAIN', username: user, password, authzid: undefined }, this.#client());
    } catch (err) {
      slot.done();
      this.#log.error({ err }, 'pop3 authenticate failed');
      return this.#session.authFailed('temporary');
    }
    const name = decision === true ? user : typeof decision === 'string' && decision !== '' ? decision : undefined;
    if (name === undefined) {
      slot.failed();
      this.#log.info({ user, client: clientLabel(this.#client()) }, 'pop3 login refused');
      return this.#session.authFailed('invalid');
    }
    slot.done();
    const key = this.#c.store.maildropOf?.(name) ?? name.toLowerCase();
    if (this.#c.locks.has(key)) return this.#session.authFailed('in-use');
    this.#c.locks.add(key);
    this.#lock = key;
    try {
      this.#maildrop = await this.#c.store.open(name);
    } catch (err) {
      this.#log.error({ err, user: name }, 'pop3 maildrop could not be opened');
      this.#unlock();
      return this.#session.authFailed('temporary');
    }
    if (this.#ended) {
      this.#unlock();
      return { kind: 'close', lines: [] };
    }
    const count = this.#maildrop.messages.length;
    this.#log.info({ user: name, client: clientLabel(this.#client()), messages: count }, 'pop3 login');
    return this.#session.authenticated(this.#maildrop.messages);
  }

  /**
   * RETR and TOP: the message streamed through the dot-stuffing encoder at the pace the client
   * reads. A message that cannot be opened is `-ERR`; one that fails half way ends the session,
   * as a multi-line response cannot be taken back. The file is closed however it ends.
   */
  async #retrieve(uid: string, size: number, bodyLines: number | undefined): Promise<Pop3Action> {
    let source: Readable;
    try {
      source = await (this.#maildrop as Pop3Maildrop).read(uid);
    } catch (err) {
      this.#log.warn({ err }, 'pop3 message could not be read');
      return { kind: 'reply', lines: ['-ERR [SYS/TEMP] The message cannot be read now'] };
    }
    this.#source = source;
    const output = this.#output;
    const encoder = new Pop3Encoder(bodyLines);
    try {
      if (this.#ended) throw new Error('the connection closed');
      output.queue(`+OK ${bodyLines === undefined ? `${size} octets` : 'top of message follows'}\r\n`);
      output.flush();
      for await (const part of source) await output.send(encoder.push(part as Buffer));
      await output.send(encoder.end());
    } catch (err) {
      if (!this.#ended) this.#log.error({ err }, 'pop3 message failed while it was sent');
      return { kind: 'close', lines: [] };
    } finally {
      source.destroy();
      this.#source = undefined;
    }
    return { kind: 'reply', lines: [] };
  }

  async #update(deleted: readonly string[]): Promise<Pop3Action> {
    let ok = true;
    if (deleted.length > 0) {
      try {
        await (this.#maildrop as Pop3Maildrop).remove(deleted);
      } catch (err) {
        this.#log.error({ err }, 'pop3 deletions failed');
        ok = false;
      }
    }
    this.#unlock();
    return this.#session.updated(ok);
  }

  /** The TLS handshake (bounded by `handshakeTimeout`), then reading again. */
  #secure(then: () => void): void {
    const tls = this.#c.tls;
    if (tls === undefined) throw new Error('TLS is not configured');
    this.#upgrading = true;
    this.#output.hold();
    upgradeSocket(this.#socket, tls, this.#c.handshakeTimeout, this.#log, undefined, {
      secure: (socket: TLSSocket) => {
        this.#upgrading = false;
        this.#socket = socket;
        this.#output.resume(socket);
        this.#attach(socket);
        then();
        this.#pump.drained();
      },
      close: () => this.#closed(),
    });
  }

  /**
   * Sends the last lines and ends the connection; input after them is ignored. `asked`: after
   * QUIT, the socket closes once the lines are written, without waiting for the client's close.
   */
  #close(lines: readonly string[], asked = false): void {
    this.#queue(lines);
    this.#end(asked);
  }

  #end(asked = false): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#idle?.stop();
    // A RETR the client stalled: its file is closed now, not when the socket finally goes.
    this.#source?.destroy();
    if (this.#upgrading) this.#socket.destroy();
    else this.#output.end(asked);
  }

  #unlock(): void {
    if (this.#lock !== undefined) this.#c.locks.delete(this.#lock);
    this.#lock = undefined;
  }

  #closed(): void {
    if (this.#closedOnce) return;
    this.#closedOnce = true;
    this.#ended = true;
    this.#idle?.stop();
    this.#source?.destroy();
    this.#admission?.release();
    this.#admission = undefined;
    this.#unlock();
    this.#onClosed(this);
  }
}
