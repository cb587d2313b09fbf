/**
 * One client connection: feeds bytes to the pure protocol code, runs the handler lifecycle, and
 * owns the one write path back to the socket. Timeouts, limits and back-pressure live here.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AnyApplication } from '../app/application.js';
import type { SessionInfo } from '../app/request.js';
import type { ApplicationSettings } from '../app/settings.js';
import { Transaction, type Maybe } from '../app/transaction.js';
import { decodeLine, parseCommand, type Command } from '../protocol/command.js';
import { DataDecoder } from '../protocol/data-decoder.js';
import { ehloReply, heloReply } from '../protocol/extensions.js';
import { LineSplitter, type LineEvent } from '../protocol/line-splitter.js';
import { formatReply, type Reply } from '../protocol/reply.js';
import { REPLIES } from '../protocol/replies.js';
import { checkOrder, inTransaction, SessionState } from '../protocol/session.js';

/** How long a connection we ended may take to close before it is destroyed. */
const LINGER_MS = 5000;

let sequence = 0;

export class Connection {
  readonly id: string;
  readonly #socket: Socket;
  readonly #app: AnyApplication;
  readonly #settings: ApplicationSettings;
  readonly #log: Logger;
  readonly #lines: LineSplitter;
  readonly #onClosed: (connection: Connection) => void;
  #state = SessionState.Connected;
  #heloName = '';
  #esmtp = false;
  #decoder: DataDecoder | null = null;
  #transaction: Transaction | null = null;
  /** The transaction whose data() is running, after the session has left the data state. */
  #delivering: Transaction | null = null;
  #out: string[] = [];
  #busy = false;
  #hookRunning = false;
  #waitingForDrain = false;
  #badCommands = 0;
  #shuttingDown = false;

  constructor(socket: Socket, app: AnyApplication, onClosed: (connection: Connection) => void) {
    this.id = `${process.pid.toString(36)}.${(++sequence).toString(36)}`;
    this.#socket = socket;
    this.#app = app;
    this.#settings = app.settings as ApplicationSettings;
    this.#onClosed = onClosed;
    this.#log = app.logger.child({ conn: this.id });
    this.#lines = new LineSplitter(this.#settings.maxLineLength);
  }

  /** Whether a transaction is open or a handler is running. */
  get busy(): boolean {
    return this.#busy || inTransaction(this.#state);
  }

  /** Greets the client and starts reading. */
  start(): void {
    const socket = this.#socket;
    this.#log.debug({ remote: socket.remoteAddress, port: socket.remotePort }, 'connected');
    socket.setNoDelay(true);
    socket.setTimeout(this.#settings.idleTimeout);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('timeout', () => this.#onTimeout());
    socket.on('error', (err) => this.#log.debug({ err }, 'socket error'));
    socket.on('close', () => this.#onSocketClose());
    this.#reply(REPLIES.greeting(this.#settings.hostname));
    this.#flush();
  }

  /** Refuses the connection with a reply and closes it (used for the connection limit). */
  refuse(reply: Reply): void {
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => this.#onClosed(this));
    this.#socket.end(formatReply(reply));
    setTimeout(() => this.#socket.destroy(), LINGER_MS).unref();
  }

  /** Graceful shutdown: closes now if idle, else once the open transaction ends. */
  shutdown(): void {
    this.#shuttingDown = true;
    if (!this.busy) this.#close(REPLIES.shuttingDown());
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#state === SessionState.Closed) return;
    this.#lines.push(chunk);
    if (!this.#busy) {
      void this.#pump();
    } else if (this.#decoder === null && this.#lines.buffered > this.#settings.maxBufferedBytes) {
      // A handler is running and the client keeps pipelining: stop reading until it is done.
      this.#socket.pause();
    }
  }

  /** Processes all complete input, one command (or one message) at a time, in order. */
  async #pump(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#state !== SessionState.Closed) {
        if (this.#decoder !== null) {
          const chunk = this.#lines.takeAll();
          if (chunk === null) break;
          const rest = this.#decoder.push(chunk);
          if (rest === undefined) continue;
          this.#lines.unshift(rest);
          const pending = this.#endOfData();
          if (pending !== undefined) await pending;
        } else {
          const event = this.#lines.next();
          if (event === undefined) break;
          const pending = this.#onLine(event);
          if (pending !== undefined) await pending;
        }
        if (this.#shuttingDown && !inTransaction(this.#state)) this.#close(REPLIES.shuttingDown());
      }
    } catch (err) {
      this.#log.error({ err }, 'connection failed');
      this.#close(REPLIES.localError());
    } finally {
      this.#busy = false;
      this.#flush();
      this.#maybeResume();
    }
  }

  #onLine(event: LineEvent): Promise<void> | undefined {
    if (event.kind === 'tooLong') return this.#refuse(REPLIES.lineTooLong());
    if (event.bareLineFeed && this.#settings.bareLineEndings === 'reject') return this.#refuse(REPLIES.bareLineFeed());
    const text = decodeLine(event.line);
    if (typeof text !== 'string') return this.#refuse(text.error);
    const command = parseCommand(text, {
      esmtp: this.#esmtp,
      smtputf8Offered: this.#settings.smtputf8,
      smtputf8Transaction: this.#transaction?.envelope.smtputf8 ?? false,
    });
    if ('error' in command) return this.#refuse(command.error);
    this.#log.debug({ verb: command.verb }, 'command');
    const outOfOrder = checkOrder(this.#state, command.verb);
    if (outOfOrder !== undefined) return this.#refuse(outOfOrder);
    return this.#execute(command);
  }

  #execute(command: Command): Promise<void> | undefined {
    switch (command.verb) {
      case 'HELO':
      case 'EHLO':
        // RFC 5321 §4.1.4: a new HELO/EHLO resets the transaction.
        this.#abortTransaction();
        this.#heloName = command.domain;
        this.#esmtp = command.verb === 'EHLO';
        this.#state = SessionState.Greeted;
        this.#reply(this.#esmtp ? ehloReply(this.#settings, command.domain) : heloReply(this.#settings.hostname));
        return undefined;
      case 'MAIL':
        return this.#mail(command);
      case 'RCPT':
        return this.#rcpt(command.address, command.params);
      case 'DATA':
        this.#state = SessionState.InData;
        this.#decoder = new DataDecoder(this.#settings.maxMessageSize, this.#settings.bareLineEndings);
        this.#reply(REPLIES.startData());
        return undefined;
      case 'RSET':
        this.#abortTransaction();
        if (this.#state !== SessionState.Connected) this.#state = SessionState.Greeted;
        this.#reply(REPLIES.ok());
        return undefined;
      case 'NOOP':
        this.#reply(REPLIES.ok());
        return undefined;
      case 'HELP':
        this.#reply(REPLIES.help());
        return undefined;
      case 'VRFY':
        this.#reply(REPLIES.cannotVerify());
        return undefined;
      case 'EXPN':
      case 'STARTTLS':
      case 'AUTH':
        this.#reply(REPLIES.notImplemented(command.verb));
        return undefined;
      case 'QUIT':
        this.#close(REPLIES.closing());
        return undefined;
      case 'HTTP':
        this.#log.info('HTTP request on the SMTP port; closing');
        this.#close(REPLIES.notSmtp());
        return undefined;
    }
  }

  #mail(command: Extract<Command, { verb: 'MAIL' }>): Promise<void> | undefined {
    // RFC 1870 §6.2: a declared size over the limit is refused at MAIL.
    if (command.size !== undefined && command.size > this.#settings.maxMessageSize) {
      this.#reply(REPLIES.messageTooBig());
      return undefined;
    }
    const transaction = new Transaction(
      this.#app,
      this.#sessionInfo(),
      {
        mailFrom: command.address,
        mailParams: command.params,
        rcptTos: [],
        rcptParams: [],
        smtputf8: command.smtputf8,
        bodyType: command.body,
        declaredSize: command.size,
      },
      this.#log,
    );
    this.#transaction = transaction;
    this.#state = SessionState.InMail;
    return this.#hook(transaction.begin(), () => {
      if (transaction.ended && this.#transaction === transaction) {
        this.#transaction = null;
        this.#state = SessionState.Greeted;
      }
    });
  }

  #rcpt(address: string, params: Readonly<Record<string, string | true>>): Promise<void> | undefined {
    const transaction = this.#transaction;
    if (transaction === null) throw new Error('RCPT without a transaction');
    if (transaction.envelope.rcptTos.length >= this.#settings.maxRecipients) {
      this.#reply(REPLIES.tooManyRecipients());
      return undefined;
    }
    return this.#hook(transaction.recipient(address, params), () => {
      if (transaction.envelope.rcptTos.length > 0 && this.#state === SessionState.InMail) {
        this.#state = SessionState.InRcpt;
      }
    });
  }

  #endOfData(): Promise<void> | undefined {
    const decoder = this.#decoder;
    const transaction = this.#transaction;
    // Leave the data state before anything can fail: the next line is a command again.
    this.#decoder = null;
    this.#transaction = null;
    this.#state = SessionState.Greeted;
    if (decoder === null || transaction === null) throw new Error('end of data without a transaction');
    const message = decoder.result();
    if (message.tooBig) {
      transaction.abort(false);
      this.#reply(REPLIES.messageTooBig());
      return undefined;
    }
    if (message.bareLineEndings && this.#settings.bareLineEndings === 'reject') {
      transaction.abort(false);
      this.#reply(REPLIES.bareLineEndingsInBody());
      return undefined;
    }
    this.#delivering = transaction;
    return this.#hook(transaction.message(message), () => {
      this.#delivering = null;
    });
  }

  /**
   * Sends a hook's reply: at once when the hook was synchronous, else once it settles, with the
   * idle timer held meanwhile (the client is waiting for us, not idle).
   */
  #hook(outcome: Maybe<Reply>, after: () => void): Promise<void> | undefined {
    if (!(outcome instanceof Promise)) {
      after();
      this.#reply(outcome);
      return undefined;
    }
    this.#flush();
    this.#hookRunning = true;
    return outcome.then(
      (reply) => {
        this.#hookRunning = false;
        if (this.#state === SessionState.Closed) {
          this.#delivering = null;
          return;
        }
        after();
        this.#reply(reply);
      },
      (err: unknown) => {
        this.#hookRunning = false;
        throw err;
      },
    );
  }

  #refuse(reply: Reply): undefined {
    this.#badCommands++;
    if (this.#badCommands >= this.#settings.maxBadCommands) {
      this.#reply(reply);
      this.#close(REPLIES.tooManyErrors());
    } else {
      this.#reply(reply);
    }
    return undefined;
  }

  #abortTransaction(): void {
    this.#transaction?.abort(false);
    this.#transaction = null;
  }

  #sessionInfo(): SessionInfo {
    const socket = this.#socket;
    return Object.freeze({
      id: this.id,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      heloName: this.#heloName,
      esmtp: this.#esmtp,
      secure: false,
      user: undefined,
    });
  }

  #reply(reply: Reply): void {
    this.#out.push(formatReply(reply));
  }

  /** RFC 2920 §3.2: replies to pipelined commands go out together, once the input runs dry. */
  #flush(): void {
    if (this.#out.length === 0 || this.#socket.destroyed) return;
    const data = this.#out.length === 1 ? (this.#out[0] ?? '') : this.#out.join('');
    this.#out = [];
    if (!this.#socket.write(data) && !this.#waitingForDrain) {
      // The client does not read its replies: stop reading its commands until it does.
      this.#waitingForDrain = true;
      this.#socket.pause();
      this.#socket.once('drain', () => {
        this.#waitingForDrain = false;
        this.#maybeResume();
      });
    }
  }

  #maybeResume(): void {
    if (this.#state === SessionState.Closed || this.#waitingForDrain) return;
    if (this.#lines.buffered <= this.#settings.maxBufferedBytes && this.#socket.isPaused()) this.#socket.resume();
  }

  #onTimeout(): void {
    // While a handler runs the client is waiting for us, not idle.
    if (this.#hookRunning || this.#state === SessionState.Closed) return;
    this.#log.info('idle timeout');
    this.#close(REPLIES.idleTimeout());
  }

  /** Sends a last reply and ends the connection; input after it is ignored. */
  #close(reply: Reply): void {
    if (this.#state === SessionState.Closed) return;
    this.#reply(reply);
    this.#flush();
    this.#state = SessionState.Closed;
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), LINGER_MS).unref();
  }

  #onSocketClose(): void {
    this.#state = SessionState.Closed;
    this.#decoder = null;
    this.#transaction?.abort(true);
    this.#delivering?.abort(true);
    this.#transaction = null;
    this.#log.debug('closed');
    this.#onClosed(this);
  }
}
