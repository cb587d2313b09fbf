/**
 * One SMTP session as pure data and decisions. The `Session` owns every per-connection fact
 * (state, HELO name, TLS, user, error counters) and every gate that refuses a command before a
 * handler hook runs: command order (503, RFC 5321 §4.1.4), STARTTLS and AUTH order (RFC 3207,
 * RFC 4954), `requireTLS`/`requireAuth` (530), SIZE at MAIL (552, RFC 1870), recipients past the
 * limit (452). It takes command lines and answers with a {@link Decision}: a reply, or what the
 * I/O layer must do (run a hook, read the data, start TLS, run AUTH, close). No sockets, no timers.
 */
import { latin1 } from './byte-index.js';
import type { Command, ParseContext } from './command.js';
import { parseLine } from './command-line.js';
import { checkOrder, inTransaction, SessionState } from './command-order.js';
import type { Decision, MailCommand, SessionFeatures, SessionPolicy } from './decision.js';
import { ehloReplyFor, heloReply } from './extensions.js';
import type { LineEvent } from './line-splitter.js';
import type { Reply } from './reply.js';
import { REPLIES } from './replies.js';
import { decodeBase64, type SaslMechanism } from './sasl.js';
import { sessionInfo, type Forwarded, type Peer, type SessionInfo, type TLSInfo } from './session-info.js';
import { clientNamed, forwardedWith, parseAttributes, XCLIENT_ATTRIBUTES, XFORWARD_ATTRIBUTES } from './xclient.js';

export type { Decision, MailCommand, SessionFeatures, SessionPolicy } from './decision.js';

/**
 * The one parse context of every session: parsing a line is synchronous and keeps none of its
 * context, so each line fills this in place instead of making an object per command.
 */
const PARSE_CONTEXT: { -readonly [K in keyof ParseContext]-?: ParseContext[K] } = {
  esmtp: false,
  smtputf8Offered: false,
  smtputf8Transaction: false,
  authOffered: false,
  strict: false,
  chunking: false,
  dsn: false,
  tls: false,
};

const AUTH_PREFIX = /^auth /i;
/** QUIT's answer, the same object every time. */
const QUIT: Decision = { kind: 'close', replies: [REPLIES.closing()], asked: true };

export class Session {
  readonly #policy: SessionPolicy;
  readonly #features: SessionFeatures;
  #peer: Peer;
  #state = SessionState.Connected;
  #heloName = '';
  #esmtp = false;
  #tls: TLSInfo | undefined;
  #user: string | undefined;
  #badCommands = 0;
  #authFailures = 0;
  #recipients = 0;
  #smtputf8Transaction = false;
  #binaryMime = false;
  /** Bytes announced by the transaction's BDAT commands so far. */
  #chunkTotal = 0;
  /** What XFORWARD said, until the transaction ends. */
  #forwarded: Forwarded | undefined;
  /** The facts last handed out; `undefined` once one of them changed. */
  #info: SessionInfo | undefined;

  constructor(policy: SessionPolicy, features: SessionFeatures, peer: Peer) {
    this.#policy = policy;
    this.#features = features;
    this.#peer = peer;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** Whether TLS is up. */
  get secure(): boolean {
    return this.#tls !== undefined;
  }

  /** The session's facts as one frozen value, built anew only after one of them changed. */
  info(): SessionInfo {
    this.#info ??= sessionInfo(this.#peer, this.#heloName, this.#esmtp, this.#tls, this.#user, this.#forwarded);
    return this.#info;
  }

  /** Whether AUTH is offered now: an authenticator, and TLS up unless insecure AUTH is allowed. */
  get authOffered(): boolean {
    return this.#features.auth && (this.#tls !== undefined || this.#policy.allowInsecureAuth);
  }

  /** A trusted proxy named the client (PROXY protocol): its facts replace the connection's. */
  proxied(peer: Peer): void {
    this.#peer = peer;
    this.#info = undefined;
  }

  /** The connection's own facts, or the ones a proxy named. */
  get peer(): Peer {
    return this.#peer;
  }

  /** A connection hook refused the client: only QUIT is served from now on (RFC 5321 §3.1). */
  refuseConnection(): void {
    this.#state = SessionState.Refused;
  }

  /** The connection is over; nothing more is decided. */
  end(): void {
    this.#state = SessionState.Closed;
  }

  /** Decides what one command line (or a line-level error) leads to. */
  line(event: LineEvent): Decision {
    if (event.kind === 'tooLong') return this.#refuse(REPLIES.lineTooLong());
    if (event.bareLineFeed && this.#policy.bareLineEndings === 'reject') return this.#refuse(REPLIES.bareLineFeed());
    // Only AUTH lines may use the longer SASL limit (RFC 4954 §4).
    const { bytes, start, end } = event;
    if (end - start + 2 > this.#policy.maxLineLength && !AUTH_PREFIX.test(latin1(bytes, start, Math.min(start + 5, end)))) {
      return this.#refuse(REPLIES.lineTooLong());
    }
    const command = parseLine(bytes, start, end, this.#parseContext());
    if ('error' in command) return this.#refuse(command.error);
    const verb = command.verb;
    if (verb === 'HELO' || verb === 'EHLO' || verb === 'LHLO') {
      // RFC 2033 §4.1: an LMTP server greets with LHLO only; an SMTP server does not know LHLO.
      if ((verb === 'LHLO') !== this.#policy.lmtp) return this.#refuse(this.#policy.lmtp ? REPLIES.useLhlo() : REPLIES.unrecognized());
    }
    if (verb === 'BDAT' && !this.#policy.chunking) return this.#skip(command.size, REPLIES.notImplemented('BDAT'));
    const outOfOrder = checkOrder(this.#state, verb, this.#policy.lmtp);
    if (outOfOrder !== undefined) {
      // A refused BDAT still carries its chunk: it is read and dropped, never taken for commands.
      return verb === 'BDAT' ? this.#skip(command.size, outOfOrder) : this.#refuse(outOfOrder);
    }
    return this.#decide(command);
  }

  /** The parse context of this session now, filled into the one context all sessions share. */
  #parseContext(): ParseContext {
    const c = PARSE_CONTEXT;
    c.esmtp = this.#esmtp;
    c.smtputf8Offered = this.#policy.smtputf8;
    c.smtputf8Transaction = this.#smtputf8Transaction;
    c.authOffered = this.authOffered;
    c.strict = this.#policy.strictSyntax;
    c.chunking = this.#policy.chunking;
    c.dsn = this.#policy.dsn;
    c.tls = this.#tls !== undefined;
    return c;
  }

  #decide(command: Command): Decision {
    switch (command.verb) {
      case 'HELO':
      case 'EHLO':
      case 'LHLO':
        // RFC 5321 §4.1.4: a new HELO/EHLO resets the transaction.
        this.#endTransaction(this.#state === SessionState.Connected ? SessionState.Connected : SessionState.Greeted);
        return { kind: 'hello', esmtp: command.verb !== 'HELO', domain: command.domain };
      case 'MAIL':
        return this.#mail(command);
      case 'RCPT':
        if (this.#recipients >= this.#policy.maxRecipients) return { kind: 'reply', reply: REPLIES.tooManyRecipients() };
        return { kind: 'rcpt', address: command.address, params: command.params, dsn: command.dsn };
      case 'DATA':
        // RFC 3030 §3: a BINARYMIME body can only be sent with BDAT.
        if (this.#binaryMime) return this.#refuse(REPLIES.badSequence('BODY=BINARYMIME requires BDAT'));
        this.#state = SessionState.InData;
        return { kind: 'data', reply: REPLIES.startData() };
      case 'BDAT':
        return this.#bdat(command.size, command.last);
      case 'RSET':
        this.#endTransaction(this.#state === SessionState.Connected ? SessionState.Connected : SessionState.Greeted);
        return { kind: 'reset', reply: REPLIES.ok() };
      case 'NOOP':
        return { kind: 'reply', reply: REPLIES.ok() };
      case 'HELP':
        return { kind: 'reply', reply: REPLIES.help() };
      case 'VRFY':
        return { kind: 'reply', reply: REPLIES.cannotVerify() };
      case 'EXPN':
        return { kind: 'reply', reply: REPLIES.notImplemented(command.verb) };
      case 'STARTTLS':
        return this.#startTls();
      case 'AUTH':
        return this.#auth(command.mechanism, command.initialResponse);
      case 'QUIT':
        this.#state = SessionState.Closed;
        return QUIT;
      case 'HTTP':
        return this.#close(REPLIES.notSmtp());
      case 'XCLIENT':
      case 'XFORWARD':
        return this.#xclient(command.verb, command.words);
    }
  }

  /**
   * HELO/EHLO was let through (no hook, or the hook accepted): the reply to send. With `refusal`,
   * the hook refused: the client has to greet again.
   */
  hello(esmtp: boolean, domain: string, refusal?: Reply): Reply {
    if (this.#state === SessionState.Closed) return refusal ?? REPLIES.ok();
    if (refusal !== undefined) {
      this.#heloName = '';
      this.#esmtp = false;
      this.#state = SessionState.Connected;
      this.#info = undefined;
      return refusal;
    }
    this.#heloName = domain;
    this.#esmtp = esmtp;
    this.#state = SessionState.Greeted;
    this.#info = undefined;
    const p = this.#policy;
    return esmtp
      ? ehloReplyFor(
          p,
          domain,
          this.#features.tls && this.#tls === undefined,
          this.authOffered,
          this.#tls !== undefined,
          this.#xclientAllowed(),
        )
      : heloReply(p.hostname);
  }

  #mail(command: MailCommand): Decision {
    if (this.#policy.requireTLS && this.#tls === undefined) return this.#refuse(REPLIES.tlsRequired());
    if (this.#policy.requireAuth && this.#user === undefined) return this.#refuse(REPLIES.authRequired());
    // RFC 1870 §6.2: a declared size over the limit is refused at MAIL.
    if (command.size !== undefined && command.size > this.#policy.maxMessageSize) {
      return { kind: 'reply', reply: REPLIES.messageTooBig() };
    }
    this.#state = SessionState.InMail;
    this.#smtputf8Transaction = command.smtputf8;
    this.#binaryMime = command.body === 'BINARYMIME';
    return { kind: 'mail', command };
  }

  /** The MAIL hook answered; a refusal ends the transaction. */
  mailAnswered(accepted: boolean): void {
    if (!accepted && this.#state === SessionState.InMail) this.#endTransaction(SessionState.Greeted);
  }

  /** The RCPT hook answered; an accepted recipient counts toward the limit. */
  rcptAnswered(accepted: boolean): void {
    if (!accepted || !inTransaction(this.#state)) return;
    this.#recipients++;
    if (this.#state === SessionState.InMail) this.#state = SessionState.InRcpt;
  }

  /** The data ended (or the transaction ended some other way): the next line is a command. */
  dataEnded(): void {
    if (this.#state === SessionState.InData) this.#endTransaction(SessionState.Greeted);
  }

  /** DATA was answered with a temporary refusal instead of 354: the transaction stays open. */
  dataRefused(): void {
    if (this.#state === SessionState.InData) this.#state = SessionState.InRcpt;
  }

  /** A BDAT chunk was read: with LAST the transaction is over, else more chunks may come. */
  chunkEnded(last: boolean): void {
    if (this.#state !== SessionState.InData) return;
    if (last) this.#endTransaction(SessionState.Greeted);
    else this.#state = SessionState.InChunks;
  }

  /** The I/O layer ended the transaction (a BDAT chunk refused for want of memory). */
  transactionFailed(): void {
    if (inTransaction(this.#state)) this.#endTransaction(SessionState.Greeted);
  }

  #endTransaction(next: SessionState): void {
    this.#state = next;
    this.#recipients = 0;
    this.#smtputf8Transaction = false;
    this.#binaryMime = false;
    this.#chunkTotal = 0;
    if (this.#forwarded !== undefined) {
      this.#forwarded = undefined;
      this.#info = undefined;
    }
  }

  #xclientAllowed(): boolean {
    return this.#features.xclient?.(this.#peer.remoteAddress) === true;
  }

  /**
   * XCLIENT replaces the client's facts and greets anew (the client says EHLO again); XFORWARD
   * adds what is logged and put in `Received` for the next transaction. Postfix's READMEs.
   */
  #xclient(verb: 'XCLIENT' | 'XFORWARD', words: readonly string[]): Decision {
    if (!this.#xclientAllowed()) return this.#refuse(REPLIES.xclientDenied());
    const attributes = parseAttributes(words, verb === 'XCLIENT' ? XCLIENT_ATTRIBUTES : XFORWARD_ATTRIBUTES);
    if ('error' in attributes && typeof attributes.error === 'string')
      return this.#refuse(REPLIES.badParameter(`${verb} ${attributes.error}`));
    this.#info = undefined;
    if (verb === 'XFORWARD') {
      this.#forwarded = forwardedWith(this.#forwarded, attributes);
      return { kind: 'reply', reply: REPLIES.ok() };
    }
    const named = clientNamed(this.#peer, attributes);
    this.#peer = named.peer;
    this.#endTransaction(SessionState.Connected);
    this.#heloName = named.heloName;
    this.#esmtp = named.esmtp;
    if (named.user !== null) this.#user = named.user;
    return { kind: 'reply', reply: REPLIES.greeting(this.#policy.hostname) };
  }

  /** RFC 3030 §2: the running total is checked before the chunk is read; 552 still reads it. */
  #bdat(size: number, last: boolean): Decision {
    const total = this.#chunkTotal + size;
    if (total > this.#policy.maxMessageSize) {
      this.#endTransaction(SessionState.Greeted);
      return { kind: 'skip', size, reply: REPLIES.messageTooBig(), abort: true };
    }
    this.#chunkTotal = total;
    this.#state = SessionState.InData;
    return { kind: 'bdat', size, last };
  }

  /** A refused BDAT: its chunk is dropped, and the refusal counts as a bad command. */
  #skip(size: number, reply: Reply): Decision {
    const refused = this.#refuse(reply);
    return refused.kind === 'close' ? refused : { kind: 'skip', size, reply, abort: false };
  }

  #startTls(): Decision {
    if (!this.#features.tls) return { kind: 'reply', reply: REPLIES.notImplemented('STARTTLS') };
    if (this.#tls !== undefined) return this.#refuse(REPLIES.tlsAlreadyActive());
    // RFC 3207 §4.2: the server forgets everything the client said before.
    this.#endTransaction(SessionState.Connected);
    this.#heloName = '';
    this.#esmtp = false;
    this.#user = undefined;
    this.#info = undefined;
    return { kind: 'startTls', reply: REPLIES.readyToStartTls() };
  }

  /** The TLS handshake finished. */
  tlsStarted(tls: TLSInfo): void {
    this.#tls = tls;
    this.#info = undefined;
  }

  #auth(mechanism: string, initialResponse: string | undefined): Decision {
    if (!this.#features.auth) return this.#refuse(REPLIES.notImplemented('AUTH'));
    if (this.#tls === undefined && !this.#policy.allowInsecureAuth) return this.#refuse(REPLIES.encryptionRequired());
    if (!this.#esmtp) return this.#refuse(REPLIES.badSequence(this.#policy.lmtp ? 'send LHLO first' : 'send EHLO first'));
    if (this.#user !== undefined) return this.#refuse(REPLIES.alreadyAuthenticated());
    if (!this.#policy.authMechanisms.includes(mechanism)) return this.#refuse(REPLIES.authUnknownMechanism());
    let initial: Buffer | undefined;
    if (initialResponse !== undefined) {
      initial = initialResponse === '=' ? Buffer.alloc(0) : decodeBase64(initialResponse);
      if (initial === undefined) return this.#refuse(REPLIES.authBadBase64());
    }
    return { kind: 'auth', mechanism: mechanism as SaslMechanism, initial };
  }

  /** AUTH succeeded as `user`. */
  authenticated(user: string): Decision {
    this.#user = user;
    this.#info = undefined;
    return { kind: 'reply', reply: REPLIES.authSuccess() };
  }

  /** Wrong credentials: counted apart from other errors; past `maxAuthFailures` the session closes. */
  authFailed(reply: Reply): Decision {
    this.#authFailures++;
    if (this.#authFailures >= this.#policy.maxAuthFailures) return this.#close(reply, REPLIES.tooManyAuthFailures());
    return { kind: 'reply', reply };
  }

  /** How many AUTH attempts failed so far. */
  get authFailures(): number {
    return this.#authFailures;
  }

  /** The exchange ended for any other reason (cancelled, malformed, refused): a bad command. */
  authRefused(reply: Reply): Decision {
    return this.#refuse(reply);
  }

  /** A refusal that counts toward `maxBadCommands`; the last one closes the session. */
  #refuse(reply: Reply): Decision {
    this.#badCommands++;
    if (this.#badCommands >= this.#policy.maxBadCommands) return this.#close(reply, REPLIES.tooManyErrors());
    return { kind: 'reply', reply };
  }

  #close(...replies: Reply[]): Decision {
    this.#state = SessionState.Closed;
    return { kind: 'close', replies };
  }
}
