/**
 * One client connection: feeds bytes to the pure protocol code, runs the handler lifecycle and
 * AUTH, upgrades to TLS, and owns the one write path back to the socket. Timeouts, limits and
 * back-pressure live here.
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
import { formatReply, SMTPError, type Reply } from '../protocol/reply.js';
import { REPLIES } from '../protocol/replies.js';
import { createExchange, decodeBase64, type AuthDecision, type SaslExchange, type SaslMechanism, type SaslStep } from '../protocol/sasl.js';
import { checkOrder, inTransaction, SessionState } from '../protocol/session.js';
import { IdleTimer } from './idle-timer.js';
import { readChunks, stopReading } from './reader.js';
import { tlsInfo, type TLSConfig, type TLSInfo } from './tls.js';

/** How long a connection we ended may take to close before it is destroyed. */
const LINGER_MS = 5000;
/** RFC 4954 §4: a SASL line may be 12288 bytes, more than an ordinary command line. */
const AUTH_LINE_LIMIT = 12288 + 2;
/** The first byte of a TLS handshake record: a TLS client on a plaintext port. */
const TLS_HANDSHAKE = 0x16;

/** What every connection of a server shares. */
export interface ConnectionContext {
  readonly app: AnyApplication;
  readonly settings: ApplicationSettings;
  readonly tls: TLSConfig | undefined;
}

let sequence = 0;

export class Connection {
  readonly id: string;
  readonly #context: ConnectionContext;
  readonly #settings: ApplicationSettings;
  readonly #log: Logger;
  readonly #lines: LineSplitter;
  readonly #onClosed: (connection: Connection) => void;
  #socket: Socket;
  #state = SessionState.Connected;
  #heloName = '';
  #esmtp = false;
  #decoder: DataDecoder | null = null;
  #transaction: Transaction | null = null;
  /** The transaction whose data() is running, after the session has left the data state. */
  #delivering: Transaction | null = null;
  #sasl: SaslExchange | null = null;
  #user: string | undefined;
  #authFailures = 0;
  #tls: TLSInfo | undefined;
  #upgrading = false;
  #receivedAny = false;
  /** Replies formatted and not yet written. */
  #out = '';
  /** The session facts last handed to a transaction; reused while they still hold. */
  #session: SessionInfo | undefined;
  #busy = false;
  #hookRunning = false;
  #waitingForDrain = false;
  #badCommands = 0;
  #shuttingDown = false;
  #closedOnce = false;
  #idleTimer: IdleTimer | null = null;

  constructor(socket: Socket, context: ConnectionContext, onClosed: (connection: Connection) => void) {
    this.id = `${process.pid.toString(36)}.${(++sequence).toString(36)}`;
    this.#socket = socket;
    this.#context = context;
    this.#settings = context.settings;
    this.#onClosed = onClosed;
    this.#log = context.app.logger.child({ conn: this.id });
    const limit =
      this.#settings.authenticate === undefined ? this.#settings.maxLineLength : Math.max(this.#settings.maxLineLength, AUTH_LINE_LIMIT);
    this.#lines = new LineSplitter(limit);
  }

  /** Whether a transaction is open or a handler is running. */
  get busy(): boolean {
    return this.#busy || this.#upgrading || inTransaction(this.#state);
  }

  /** Greets the client (after the handshake, for implicit TLS) and starts reading. */
  start(): void {
    const socket = this.#socket;
    this.#log.debug({ remote: socket.remoteAddress, port: socket.remotePort }, 'connected');
    socket.on('error', (err) => this.#log.debug({ err }, 'socket error'));
    socket.on('close', () => this.#onSocketClose());
    this.#idleTimer = new IdleTimer(
      this.#settings.idleTimeout,
      () => this.#hookRunning || this.#upgrading,
      () => this.#onTimeout(),
    );
    if (this.#settings.implicitTLS) {
      this.#secure(true);
      return;
    }
    this.#attach(socket);
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

  #attach(socket: Socket): void {
    socket.setNoDelay(true);
    readChunks(socket, (chunk) => this.#onData(chunk), this.#settings.directReads);
  }

  #onData(chunk: Buffer): void {
    if (this.#state === SessionState.Closed || this.#upgrading) return;
    this.#idleTimer?.touch();
    if (!this.#receivedAny) {
      this.#receivedAny = true;
      if (chunk[0] === TLS_HANDSHAKE && this.#tls === undefined) {
        this.#log.info('TLS handshake on a plaintext port; closing');
        this.#state = SessionState.Closed;
        this.#socket.destroy();
        return;
      }
    }
    this.#lines.push(chunk);
    if (!this.#busy) {
      this.#pump();
    } else if (this.#decoder === null && this.#lines.buffered > this.#settings.maxBufferedBytes) {
      // A handler is running and the client keeps pipelining: stop reading until it is done.
      this.#socket.pause();
    }
  }

  /**
   * Processes all complete input, one command (or one message) at a time, in order. Runs
   * synchronously while hooks return at once; a hook's promise pauses it until the promise settles.
   */
  #pump(): void {
    this.#busy = true;
    let pending: Promise<void> | undefined;
    try {
      pending = this.#drain();
    } catch (err) {
      this.#failed(err);
    }
    if (pending === undefined) {
      this.#idle();
      return;
    }
    pending.then(
      () => {
        this.#afterCommand();
        this.#pump();
      },
      (err: unknown) => {
        this.#failed(err);
        this.#idle();
      },
    );
  }

  /** Runs commands until the input runs dry (`undefined`) or a hook is still running (its promise). */
  #drain(): Promise<void> | undefined {
    while (this.#state !== SessionState.Closed && !this.#upgrading) {
      let pending: Promise<void> | undefined;
      if (this.#decoder !== null) {
        const chunk = this.#lines.takeAll();
        if (chunk === null) break;
        const rest = this.#decoder.push(chunk);
        if (rest === undefined) continue;
        this.#lines.unshift(rest);
        pending = this.#endOfData();
      } else {
        const event = this.#lines.next();
        if (event === undefined) break;
        pending = this.#sasl === null ? this.#onLine(event) : this.#onSaslLine(this.#sasl, event);
      }
      if (pending !== undefined) return pending;
      this.#afterCommand();
    }
    return undefined;
  }

  #afterCommand(): void {
    if (this.#shuttingDown && !inTransaction(this.#state)) this.#close(REPLIES.shuttingDown());
  }

  #failed(err: unknown): void {
    this.#log.error({ err }, 'connection failed');
    this.#close(REPLIES.localError());
  }

  /** The input ran dry: send what is due and read again. */
  #idle(): void {
    this.#busy = false;
    this.#lines.compact();
    this.#flush();
    this.#maybeResume();
  }

  #onLine(event: LineEvent): Promise<void> | undefined {
    if (event.kind === 'tooLong') return this.#refuse(REPLIES.lineTooLong());
    if (event.bareLineFeed && this.#settings.bareLineEndings === 'reject') return this.#refuse(REPLIES.bareLineFeed());
    // Only AUTH lines may use the longer SASL limit.
    if (event.line.length + 2 > this.#settings.maxLineLength && !/^auth /i.test(event.line.subarray(0, 5).toString('latin1'))) {
      return this.#refuse(REPLIES.lineTooLong());
    }
    const text = decodeLine(event.line);
    if (typeof text !== 'string') return this.#refuse(text.error);
    const command = parseCommand(text, {
      esmtp: this.#esmtp,
      smtputf8Offered: this.#settings.smtputf8,
      smtputf8Transaction: this.#transaction?.envelope.smtputf8 ?? false,
      authOffered: this.#authOffered(),
    });
    if ('error' in command) return this.#refuse(command.error);
    // The verb only: arguments may hold credentials (AUTH) or personal data.
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
        this.#reply(
          this.#esmtp
            ? ehloReply(
                {
                  hostname: this.#settings.hostname,
                  maxMessageSize: this.#settings.maxMessageSize,
                  smtputf8: this.#settings.smtputf8,
                  starttls: this.#context.tls !== undefined && this.#tls === undefined,
                  auth: this.#authOffered() ? this.#settings.authMechanisms : [],
                },
                command.domain,
              )
            : heloReply(this.#settings.hostname),
        );
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
        this.#reply(REPLIES.notImplemented(command.verb));
        return undefined;
      case 'STARTTLS':
        this.#startTls();
        return undefined;
      case 'AUTH':
        return this.#auth(command.mechanism, command.initialResponse);
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
    if (this.#settings.requireTLS && this.#tls === undefined) return this.#refuse(REPLIES.tlsRequired());
    if (this.#settings.requireAuth && this.#user === undefined) return this.#refuse(REPLIES.authRequired());
    // RFC 1870 §6.2: a declared size over the limit is refused at MAIL.
    if (command.size !== undefined && command.size > this.#settings.maxMessageSize) {
      this.#reply(REPLIES.messageTooBig());
      return undefined;
    }
    const transaction = new Transaction(
      this.#context.app,
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
    return this.#await(outcome, (reply) => {
      after();
      this.#reply(reply);
      return undefined;
    });
  }

  /** Continues with `then` now, or once `value` settles if the connection is still open. */
  #await<T>(value: Maybe<T>, then: (v: T) => Promise<void> | undefined): Promise<void> | undefined {
    if (!(value instanceof Promise)) return then(value);
    this.#flush();
    this.#hookRunning = true;
    return value.then(
      (v) => {
        this.#hookRunning = false;
        if (this.#state === SessionState.Closed) {
          this.#delivering = null;
          return undefined;
        }
        return then(v);
      },
      (err: unknown) => {
        this.#hookRunning = false;
        throw err;
      },
    );
  }

  // ---- STARTTLS and implicit TLS (RFC 3207, RFC 8314) ----

  #startTls(): void {
    if (this.#context.tls === undefined) {
      this.#reply(REPLIES.notImplemented('STARTTLS'));
      return;
    }
    if (this.#tls !== undefined) {
      this.#refuse(REPLIES.tlsAlreadyActive());
      return;
    }
    this.#reply(REPLIES.readyToStartTls());
    this.#flush();
    // CVE-2011-0411: whatever the client pipelined after STARTTLS in plaintext is dropped, never
    // executed inside TLS.
    const dropped = this.#lines.takeAll();
    if (dropped !== null) this.#log.info({ bytes: dropped.length }, 'dropped plaintext pipelined after STARTTLS');
    // RFC 3207 §4.2: the server forgets everything the client said before.
    this.#abortTransaction();
    this.#state = SessionState.Connected;
    this.#heloName = '';
    this.#esmtp = false;
    this.#user = undefined;
    this.#secure(false);
  }

  #secure(greet: boolean): void {
    const config = this.#context.tls;
    if (config === undefined) throw new Error('TLS is not configured');
    const plain = this.#socket;
    stopReading(plain);
    this.#upgrading = true;
    const secure = config.upgrade(plain);
    const timer = setTimeout(() => {
      this.#log.info('TLS handshake timed out');
      secure.destroy();
    }, this.#settings.handshakeTimeout);
    secure.on('error', (err: Error) => {
      clearTimeout(timer);
      this.#log.info({ reason: err.message }, 'TLS failed');
      secure.destroy();
    });
    secure.on('close', () => this.#onSocketClose());
    secure.once('secure', () => {
      clearTimeout(timer);
      this.#upgrading = false;
      this.#socket = secure;
      this.#tls = tlsInfo(secure);
      this.#log.debug({ protocol: this.#tls.protocol, cipher: this.#tls.cipher }, 'TLS established');
      this.#attach(secure);
      if (greet) this.#reply(REPLIES.greeting(this.#settings.hostname));
      this.#flush();
      if (this.#shuttingDown) this.#close(REPLIES.shuttingDown());
    });
  }

  // ---- AUTH (RFC 4954) ----

  #authOffered(): boolean {
    return this.#settings.authenticate !== undefined && (this.#tls !== undefined || this.#settings.allowInsecureAuth);
  }

  #auth(mechanism: string, initialResponse: string | undefined): Promise<void> | undefined {
    if (this.#settings.authenticate === undefined) return this.#refuse(REPLIES.notImplemented('AUTH'));
    if (this.#tls === undefined && !this.#settings.allowInsecureAuth) return this.#refuse(REPLIES.encryptionRequired());
    if (!this.#esmtp) return this.#refuse(REPLIES.badSequence('send EHLO first'));
    if (this.#user !== undefined) return this.#refuse(REPLIES.alreadyAuthenticated());
    if (!(this.#settings.authMechanisms as string[]).includes(mechanism)) return this.#refuse(REPLIES.authUnknownMechanism());
    let initial: Buffer | undefined;
    if (initialResponse !== undefined) {
      initial = initialResponse === '=' ? Buffer.alloc(0) : decodeBase64(initialResponse);
      if (initial === undefined) return this.#refuse(REPLIES.authBadBase64());
    }
    const exchange = createExchange(mechanism as SaslMechanism, { hostname: this.#settings.hostname });
    this.#sasl = exchange;
    return this.#saslStep(exchange, mechanism, exchange.start(initial));
  }

  /** A client line inside an AUTH exchange. Never logged: it holds credentials. */
  #onSaslLine(exchange: SaslExchange, event: LineEvent): Promise<void> | undefined {
    if (event.kind === 'tooLong') return this.#endSasl(REPLIES.authLineTooLong());
    const text = event.line.toString('latin1');
    if (text === '*') return this.#endSasl(REPLIES.authCancelled());
    const data = decodeBase64(text);
    if (data === undefined) return this.#endSasl(REPLIES.authBadBase64());
    return this.#saslStep(exchange, '', exchange.respond(data));
  }

  #saslStep(exchange: SaslExchange, mechanism: string, step: SaslStep): Promise<void> | undefined {
    switch (step.kind) {
      case 'challenge':
        this.#reply(REPLIES.authChallenge(step.data));
        return undefined;
      case 'credentials':
        return this.#await(this.#authenticate(step.credentials), (decision) =>
          decision instanceof SMTPError
            ? this.#endSasl(decision.toReply())
            : this.#saslStep(exchange, mechanism, exchange.decide(decision)),
        );
      case 'success':
        this.#sasl = null;
        this.#user = step.user;
        this.#log.info({ user: step.user }, 'authenticated');
        this.#reply(REPLIES.authSuccess());
        return undefined;
      case 'failure':
        this.#sasl = null;
        if (!step.countsAsFailure) return this.#refuse(step.reply);
        this.#authFailures++;
        this.#log.info({ failures: this.#authFailures }, 'authentication failed');
        this.#reply(step.reply);
        if (this.#authFailures >= this.#settings.maxAuthFailures) this.#close(REPLIES.tooManyAuthFailures());
        return undefined;
    }
  }

  /** Asks the application; its own `SMTPError` becomes the reply, any other error a 454. */
  #authenticate(credentials: Parameters<NonNullable<ApplicationSettings['authenticate']>>[0]): Maybe<AuthDecision | SMTPError> {
    const authenticate = this.#settings.authenticate;
    if (authenticate === undefined) return false;
    const failed = (err: unknown): SMTPError => {
      if (err instanceof SMTPError) return err;
      this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'authenticate failed');
      return new SMTPError(454, [4, 7, 0], 'Temporary authentication failure');
    };
    try {
      const result = authenticate(credentials, this.#sessionInfo());
      return result instanceof Promise ? result.catch(failed) : result;
    } catch (err) {
      return failed(err);
    }
  }

  #endSasl(reply: Reply): undefined {
    this.#sasl = null;
    return this.#refuse(reply);
  }

  // ---- shared ----

  #refuse(reply: Reply): undefined {
    this.#reply(reply);
    this.#badCommands++;
    if (this.#badCommands >= this.#settings.maxBadCommands) this.#close(REPLIES.tooManyErrors());
    return undefined;
  }

  #abortTransaction(): void {
    this.#transaction?.abort(false);
    this.#transaction = null;
  }

  /** The session facts, built anew only after HELO/EHLO, STARTTLS or AUTH changed one of them. */
  #sessionInfo(): SessionInfo {
    const last = this.#session;
    if (
      last !== undefined &&
      last.heloName === this.#heloName &&
      last.esmtp === this.#esmtp &&
      last.tls === this.#tls &&
      last.user === this.#user
    ) {
      return last;
    }
    const socket = this.#socket;
    return (this.#session = Object.freeze({
      id: this.id,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      heloName: this.#heloName,
      esmtp: this.#esmtp,
      secure: this.#tls !== undefined,
      tls: this.#tls,
      user: this.#user,
    }));
  }

  #reply(reply: Reply): void {
    this.#out += formatReply(reply);
  }

  /** RFC 2920 §3.2: replies to pipelined commands go out together, once the input runs dry. */
  #flush(): void {
    if (this.#out === '' || this.#socket.destroyed || this.#upgrading) return;
    const data = this.#out;
    this.#out = '';
    this.#idleTimer?.touch();
    if (!this.#socket.write(data) && !this.#waitingForDrain) {
      // The client does not read its replies: stop reading its commands until it does.
      this.#waitingForDrain = true;
      const socket = this.#socket;
      socket.pause();
      socket.once('drain', () => {
        this.#waitingForDrain = false;
        this.#maybeResume();
      });
    }
  }

  #maybeResume(): void {
    if (this.#state === SessionState.Closed || this.#waitingForDrain || this.#upgrading) return;
    if (this.#lines.buffered <= this.#settings.maxBufferedBytes && this.#socket.isPaused()) this.#socket.resume();
  }

  #onTimeout(): void {
    if (this.#state === SessionState.Closed) return;
    this.#log.info('idle timeout');
    this.#close(REPLIES.idleTimeout());
  }

  /** Sends a last reply and ends the connection; input after it is ignored. */
  #close(reply: Reply): void {
    if (this.#state === SessionState.Closed) return;
    if (this.#upgrading) {
      this.#state = SessionState.Closed;
      this.#socket.destroy();
      return;
    }
    this.#reply(reply);
    this.#flush();
    this.#state = SessionState.Closed;
    this.#socket.end();
    const socket = this.#socket;
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }

  #onSocketClose(): void {
    if (this.#closedOnce) return;
    this.#closedOnce = true;
    this.#idleTimer?.stop();
    this.#state = SessionState.Closed;
    this.#decoder = null;
    this.#sasl = null;
    this.#transaction?.abort(true);
    this.#delivering?.abort(true);
    this.#transaction = null;
    this.#log.debug('closed');
    this.#onClosed(this);
  }
}
