/**
 * One client connection: the socket's lifecycle, timeouts and graceful shutdown, and the I/O half of every decision the pure
 * {@link Session} makes, handed to the room that carries it out: bytes in through the {@link InputPump}, replies out through the
 * {@link ReplyWriter}, the mail transaction in the {@link Intake}, AUTH in an {@link AuthExchange}, STARTTLS in `upgradeSocket`,
 * the banner and HELO (with their hooks) in the {@link Opening}.
 */
import type { Socket } from 'node:net';
import { commandLineLimit, nextConnectionId, peerOf, type ConnectionContext } from './connection-context.js';
import type { ClientLimits } from '../net/client-limits.js';
import type { ServerMetrics } from './metrics.js';
import type { Logger } from 'pino';
import type { ApplicationSettings } from '../app/settings.js';
import { LineSplitter } from '../protocol/line-splitter.js';
import { Opening, type OpeningDriver } from './opening.js';
import { looksLikeProxyHeader } from '../protocol/proxy-header.js';
import type { Reply } from '../protocol/reply.js';
import { REPLIES } from '../protocol/replies.js';
import { inTransaction } from '../protocol/command-order.js';
import { Session, type Decision } from '../protocol/session.js';
import { clientLabel } from '../protocol/session-info.js';
import { transcriptCommand } from '../protocol/transcript.js';
import { AuthExchange } from './auth-exchange.js';
import { IdleTimer, type IdleOwner } from '../net/idle-timer.js';
import { Intake } from './intake.js';
import { asPending, DRY, InputPump, type PumpDriver, type StepResult } from '../net/input-pump.js';
import type { LocalEnd } from '../net/listeners.js';
import { readChunks, type ChunkSink } from '../net/reader.js';
import { ReplyWriter, type WriterOwner } from './reply-writer.js';
import { upgradeSocket } from '../net/tls-upgrade.js';
import { startsTlsHandshake } from '../net/tls.js';
import { ProxyPreamble } from './proxy-preamble.js';
import { listenFor, type SocketOwner } from './socket-owner.js';
import { endWith, sessionEnded, sessionSpan, type Traced } from '../app/tracing.js';

export class Connection implements PumpDriver, WriterOwner, IdleOwner, OpeningDriver, ChunkSink, SocketOwner {
  readonly id: string;
  readonly #context: ConnectionContext;
  readonly settings: ApplicationSettings;
  /** The connection's logger, made at its first use: an idle connection that logs nothing holds none. */
  #log: Logger | null = null;
  readonly lines: LineSplitter;
  readonly session: Session;
  readonly writer: ReplyWriter;
  readonly pump: InputPump;
  readonly limits: ClientLimits;
  readonly metrics: ServerMetrics | null;
  /** The mail transaction's room, made at the first command that needs it. */
  #intake: Intake | null = null;
  readonly #onClosed: (connection: Connection) => void;
  #socket: Socket;
  #auth: AuthExchange | null = null;
  #upgrading = false;
  #receivedAny = false;
  #shuttingDown = false;
  /** Set once the connection is ending: nothing more is read or decided. */
  #ended = false;
  #closedOnce = false;
  #idleTimer: IdleTimer | null = null;
  /** The PROXY header being read, from a trusted load balancer, before anything else. */
  #preamble: ProxyPreamble | null = null;
  /** Everything before the banner: the per-client limits, the early-talker wait, `onConnect`. */
  readonly #opening: Opening;
  /** A client on a Unix socket: the per-client limits do not count it. */
  readonly #unixClient: boolean;
  /** The session's transcript in the log: commands at `debug`, with the sizes of reads at `trace`. */
  readonly #transcript: 'debug' | 'trace' | null;
  /** The session's span (a no-op until the application registers an OpenTelemetry SDK). */
  readonly #trace: Traced;

  /** `local`: where the client connected, when the listener knows (a Unix socket's path names the client in logs and `localAddress`). */
  constructor(socket: Socket, context: ConnectionContext, local: LocalEnd | undefined, onClosed: (connection: Connection) => void) {
    this.id = nextConnectionId();
    this.#socket = socket;
    this.#context = context;
    const settings = (this.settings = context.settings);
    this.#onClosed = onClosed;
    this.limits = context.limits;
    this.metrics = context.metrics;
    const logger = context.app.logger;
    this.#transcript = logger.isLevelEnabled('trace') ? 'trace' : logger.isLevelEnabled('debug') ? 'debug' : null;
    this.#unixClient = socket.remoteAddress === undefined;
    this.lines = new LineSplitter(commandLineLimit(settings), settings.strictSyntax);
    this.session = new Session(settings, context.features, peerOf(this.id, socket, local));
    this.#trace = sessionSpan(this.session.peer, settings.lmtp);
    this.writer = new ReplyWriter(socket, this, this.metrics, this.#transcript);
    this.pump = new InputPump(this.lines, settings.maxBufferedBytes, this);
    this.#opening = new Opening(this);
  }

  get log(): Logger {
    return (this.#log ??= this.#context.app.logger.child({ conn: this.id }));
  }

  #transactions(): Intake {
    return (this.#intake ??= new Intake(this.#context.app, this.session, this.writer, this.pump, this, this.metrics, this.#trace));
  }

  // The connection drives its pump, writer, idle timer, opening and AUTH exchanges (each interface documented where declared).
  wrote(): void {
    this.#idleTimer?.touch();
  }

  drained(): void {
    this.pump.drained();
  }

  closing(): void {
    this.#end([]);
  }

  waitingOnServer(): boolean {
    return this.pump.hookRunning || this.#upgrading;
  }

  idleExpired(): void {
    if (this.#ended) return;
    this.log.info('idle timeout');
    this.#end([REPLIES.idleTimeout()]);
  }

  limitsClient(): string | null {
    return this.#unixClient ? null : this.session.peer.remoteAddress;
  }

  hasEnded(): boolean {
    return this.#ended;
  }

  closeWith(reply: Reply): void {
    this.#end([reply]);
  }

  socket(): Socket {
    return this.#socket;
  }

  running(): boolean {
    return !this.#ended && !this.#upgrading;
  }

  waitingForDrain(): boolean {
    return this.writer.waitingForDrain;
  }

  afterStep(): void {
    if (this.#shuttingDown && !inTransaction(this.session.state)) this.#end([REPLIES.shuttingDown()]);
  }

  failed(err: unknown): void {
    this.log.error({ err }, 'connection failed');
    this.#trace.failed(err, 'connection failed');
    this.#end([REPLIES.localError()]);
  }

  flush(): void {
    this.writer.flush();
  }

  queued(): number {
    return this.writer.queued;
  }

  /** Whether a transaction is open or a handler is running. */
  get busy(): boolean {
    return this.pump.busy || this.#upgrading || inTransaction(this.session.state);
  }

  /** Greets the client (after the handshake, for implicit TLS) and starts reading. */
  start(): void {
    const socket = this.#socket;
    if (this.#transcript !== null) this.log.debug({ client: clientLabel(this.session.peer), port: socket.remotePort }, 'connected');
    // Once, on the plain socket: a TLS socket over it writes to the same one.
    socket.setNoDelay(true);
    listenFor(socket, this);
    this.#idleTimer = new IdleTimer(this.settings.idleTimeout, this);
    if (this.#context.proxies.has(socket.remoteAddress)) {
      // The banner waits for the header: the client it names is who the session greets.
      this.#preamble = new ProxyPreamble(this.session.peer, this.settings.proxyTimeout, () =>
        this.#refuseProxy('no whole PROXY header in time'),
      );
      readChunks(socket, this, this.settings.directReads);
      return;
    }
    if (this.settings.implicitTLS) {
      this.#secure(true);
      return;
    }
    readChunks(socket, this, this.settings.directReads);
    this.pump.run(() => this.#opening.welcome());
  }

  /** One read of the PROXY preamble; once whole, the session goes on as the client it names. */
  #onPreamble(preamble: ProxyPreamble, chunk: Buffer): void {
    const step = preamble.push(chunk);
    if ('more' in step) return;
    if ('error' in step) {
      this.#refuseProxy(step.error);
      return;
    }
    this.#preamble = null;
    this.session.proxied(step.peer);
    this.log.debug({ client: clientLabel(step.peer), port: step.peer.remotePort, proxy: step.peer.proxy?.command }, 'PROXY header');
    if (this.settings.implicitTLS) {
      // The header came in plaintext; TLS starts right after it, with what followed it in the read.
      this.#secure(true, step.rest);
      return;
    }
    this.pump.run(() => this.#opening.welcome());
    if (step.rest.length > 0) this.onChunk(step.rest);
  }

  /** A PROXY header that is missing, malformed, too long or from an untrusted peer: closed without a word. */
  #refuseProxy(why: string): void {
    this.#preamble?.cancel();
    this.#preamble = null;
    if (this.#ended) return;
    this.metrics?.refused('proxy');
    this.log.info({ reason: why, peer: this.#socket.remoteAddress }, 'PROXY header refused; closing');
    this.#end('drop');
  }

  /** Turns the client away with one reply and closes (the connection limit, a server closing). */
  turnAway(reply: Reply): void {
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => {
      endWith(this.#trace, reply, 'turned away');
      this.#onClosed(this);
    });
    this.#end([reply]);
  }

  /** Graceful shutdown: closes now if idle, else once the open transaction ends. */
  shutdown(): void {
    this.#shuttingDown = true;
    if (!this.busy) this.#end([REPLIES.shuttingDown()]);
  }

  /** Drops the connection at once (also one that already ended with its last replies and waits for the client). */
  destroy(): void {
    this.#end('drop');
    this.#socket.destroy();
  }

  /** Takes a loan of the shared read buffer (lib/net/reader.ts) after the first read, while commands are read and nothing runs. */
  lend(read: Buffer, length: number): boolean {
    if (!this.#receivedAny || !this.running() || this.pump.busy || this.#intake?.readingData === true) return false;
    if (this.#transcript === 'trace') this.log.trace({ bytes: length }, 'read');
    this.#idleTimer?.touch();
    this.pump.pushLent(read, length);
    return true;
  }

  /** One read of the socket (the connection is its own {@link ChunkSink}). */
  onChunk(chunk: Buffer): void {
    if (this.#ended || this.#upgrading) return;
    if (this.#transcript === 'trace') this.log.trace({ bytes: chunk.length }, 'read');
    this.#idleTimer?.touch();
    const preamble = this.#preamble;
    if (preamble !== null) {
      this.#onPreamble(preamble, chunk);
      return;
    }
    if (!this.#receivedAny) {
      this.#receivedAny = true;
      if (!this.#context.proxies.empty && this.session.peer.proxy === undefined && chunk.length >= 6 && looksLikeProxyHeader(chunk)) {
        this.#refuseProxy('PROXY header from a peer not in proxyFrom');
        return;
      }
      if (startsTlsHandshake(chunk) && !this.session.secure) {
        this.log.info('TLS handshake on a plaintext port; closing');
        this.#end('drop');
        return;
      }
    }
    this.pump.push(chunk);
  }

  /** One unit of input: the message data while it is being read, else one line. */
  step(): StepResult {
    const intake = this.#intake;
    if (intake !== null && intake.readingData) return intake.takeData(this.lines);
    const event = this.lines.next();
    if (event === undefined) return DRY;
    const auth = this.#auth;
    if (this.#transcript !== null)
      this.log.debug({ line: event.kind === 'line' ? transcriptCommand(event.line, auth !== null) : '(too long)' }, 'C:');
    if (auth === null) {
      const decision = this.session.line(event);
      if (this.metrics !== null) this.metrics.commandDecided(decision, event);
      return this.#carryOut(decision);
    }
    return this.pump.wait(auth.line(event), (decision) => this.#afterAuth(auth, decision));
  }

  #carryOut(decision: Decision): Promise<void> | undefined {
    switch (decision.kind) {
      case 'reply':
        this.writer.add(decision.reply);
        return undefined;
      case 'close':
        this.#end(decision.replies, decision.asked === true);
        return undefined;
      case 'hello':
        this.#intake?.abort();
        return this.#opening.hello(decision.esmtp, decision.domain);
      case 'mail':
        return this.#transactions().mail(decision.command);
      case 'rcpt':
        return this.#transactions().rcpt(decision.address, decision.params, decision.dsn);
      case 'bdat':
        return asPending(this.#transactions().startChunk(decision.size, decision.last));
      case 'skip':
        if (decision.abort) this.#intake?.abort();
        return asPending(this.#transactions().skip(decision.size, decision.reply));
      case 'data':
        return this.#transactions().startData(decision.reply);
      case 'reset':
        this.#intake?.abort();
        this.writer.add(decision.reply);
        return undefined;
      case 'startTls':
        this.#startTls(decision.reply);
        return undefined;
      case 'auth': {
        const auth = new AuthExchange(decision.mechanism, this, this.#trace);
        this.#auth = auth;
        return this.pump.wait(auth.start(decision.initial), (next) => this.#afterAuth(auth, next));
      }
    }
  }

  #afterAuth(auth: AuthExchange, decision: Decision): Promise<void> | undefined {
    if (!auth.open && this.#auth === auth) this.#auth = null;
    return this.#carryOut(decision);
  }

  #startTls(ready: Reply): void {
    this.writer.add(ready);
    this.writer.flush();
    // CVE-2011-0411: whatever the client pipelined after STARTTLS in plaintext is dropped, never executed inside TLS.
    const dropped = this.lines.takeAll();
    if (dropped !== null) this.log.info({ bytes: dropped.length }, 'dropped plaintext pipelined after STARTTLS');
    this.#intake?.abort();
    this.#secure(false);
  }

  /** The TLS handshake, then reading again (and the welcome, for implicit TLS). */
  #secure(implicit: boolean, early?: Buffer): void {
    const config = this.#context.tls;
    if (config === undefined) throw new Error('TLS is not configured');
    this.#upgrading = true;
    this.writer.hold();
    upgradeSocket(this.#socket, config, this.settings.handshakeTimeout, this.log, early, {
      secure: (socket, info) => {
        this.#upgrading = false;
        this.#socket = socket;
        this.session.tlsStarted(info);
        this.metrics?.tls(info.protocol);
        this.writer.resume(socket);
        readChunks(socket, this, this.settings.directReads);
        if (implicit) this.pump.run(() => this.#opening.welcome());
        if (this.#shuttingDown) this.#end([REPLIES.shuttingDown()]);
      },
      close: () => this.socketClosed(),
    });
  }

  /**
   * The one way a connection ends, after which nothing is read or decided: with its last replies, then the socket's end (queued
   * replies first), or dropped without a word (`'drop'`: a PROXY header refused, TLS on a plaintext port, the server's close
   * timeout, any end during a TLS handshake); the socket's `close` does the rest (`socketClosed`). `asked`: the client sent QUIT,
   * so the socket closes once the replies are written, not after the client's own close (one that never reads the 221 resets nothing).
   */
  #end(how: readonly Reply[] | 'drop', asked = false): void {
    if (this.#ended) return;
    this.#ended = true;
    this.session.end();
    if (how === 'drop' || this.#upgrading) this.#socket.destroy();
    else this.writer.end(how, asked);
  }

  socketClosed(): void {
    if (this.#closedOnce) return;
    this.#closedOnce = true;
    this.#idleTimer?.stop();
    this.#preamble?.cancel();
    this.#opening.release();
    this.#ended = true;
    this.session.end();
    this.#auth?.abandon();
    this.#auth = null;
    this.#intake?.connectionClosed();
    sessionEnded(this.#trace, this.session.info());
    if (this.#transcript !== null) this.log.debug('closed');
    this.#onClosed(this);
  }
}
