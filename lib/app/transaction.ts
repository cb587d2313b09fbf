/**
 * The RequestHandler lifecycle, written once. Every path out of every hook produces exactly one
 * reply, and `onFinish` runs exactly once per transaction.
 *
 * Hooks that return without a promise are run without one: the common synchronous handler pays
 * no microtask per command. Results are therefore `T | Promise<T>` (`Maybe`).
 */
import type { Logger } from 'pino';
import type { EsmtpParams } from '../protocol/command.js';
import type { RcptDsn } from '../protocol/dsn.js';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError, type Reply } from '../protocol/reply.js';
import { clientLabel, type SessionInfo } from '../protocol/session-info.js';
import { DropConnection, replyForError } from './errors.js';
import { endWith, SpanKinds, Traced } from './tracing.js';
import { andThen, chain, type Maybe } from './maybe.js';
import type { ReadBufferRecycler } from './lent-chunks.js';
import { MessageAbortedError, MessageStream } from './message-stream.js';
import { recipientIndexes, SMTPRequest, type Envelope } from './request.js';
import { authenticateBody, authenticateStream, verifierOf } from './authentication.js';
import { RequestHandler, type AnyServedApplication, type HandlerTransaction, type ServedApplication } from './request-handler.js';

/** Where a handler is in its lifecycle; `finish()` is only allowed in `data`. */
type HandlerPhase = 'prepare' | 'rcpt' | 'idle' | 'data' | 'done';

/** The envelope as the server builds it. */
export interface MutableEnvelope extends Envelope {
  rcptTos: string[];
  rcptParams: EsmtpParams[];
  rcptDsn: (RcptDsn | undefined)[];
}

/**
 * What ends a message: one reply, or in LMTP one per accepted recipient (RFC 2033 §4.2).
 *
 * @example
 * ```ts
 * const lines = (r: MessageReplies) => (Array.isArray(r) ? r : [r]).map(formatReply);
 * ```
 */
export type MessageReplies = Reply | readonly Reply[];

/** What holds the connection's logger (the connection itself), asked for it only when a line is logged. */
export interface LogSource {
  readonly log: Logger;
}

export class Transaction implements HandlerTransaction {
  readonly request: SMTPRequest;
  readonly envelope: MutableEnvelope;
  readonly #app: AnyServedApplication;
  /** Where the connection's logger comes from: made on first use, so a quiet connection makes none. */
  readonly #logs: LogSource;
  #log: Logger | undefined;
  #handler: RequestHandler<object> | undefined;
  #phase: HandlerPhase = 'prepare';
  #finished = false;
  #finishText: string | undefined;
  #running = 0;
  #aborted = false;
  #connectionClosed = false;
  #ended = false;
  #stream: MessageStream | null = null;
  /** A streaming handler's running `data()`: its error reply, or `undefined`. */
  #streamOutcome: Maybe<Reply | undefined> = undefined;
  /** A streaming message's mail authentication under way (`mailAuth`): rejects with a refusal. */
  #verifying: Promise<void> | undefined;
  /** LMTP: the recipients `data()` refused, by index. */
  #failures: Map<number, Reply> | null = null;
  /** The transaction's span (`smtp.transaction`), from MAIL to the final reply; the hooks run inside it. */
  readonly #trace: Traced;
  /** The reply that ended the transaction (`undefined`: reset, or the client left). */
  #reply: Reply | undefined;
  #size: number | undefined;

  /** `parent`: the session's span, when there is one. */
  constructor(app: AnyServedApplication, session: SessionInfo, envelope: MutableEnvelope, logs: LogSource, parent: Traced | null = null) {
    this.#app = app;
    this.envelope = envelope;
    this.request = new SMTPRequest(session, envelope);
    this.#logs = logs;
    this.#trace = Traced.start('smtp.transaction', SpanKinds.INTERNAL, parent);
  }

  /** Whether the transaction is over (`onFinish` ran or is due once a running hook settles). */
  get ended(): boolean {
    return this.#ended || this.#aborted;
  }

  /** The transaction's one logger, made on first use (it carries the queue id); the handler's too. */
  get log(): Logger {
    this.#log ??= this.#logs.log.child({ queueId: this.request.id });
    return this.#log;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** The handler's `finish()`: only in `data()`, and only once. */
  finish(text?: string): void {
    if (this.#finished) throw new Error('finish() was already called for this message');
    if (this.#phase !== 'data') throw new Error('finish() ends a message: call it from data()');
    this.#finished = true;
    this.#finishText = text;
  }

  /** MAIL: builds the handler and runs `prepare()`. A refusal ends the transaction. */
  begin(): Maybe<Reply> {
    // Hooks run as methods with their arguments: a synchronous one makes no closure.
    const outcome = this.#run('prepare', this.#prepareHook, undefined, undefined);
    return outcome instanceof Promise ? outcome.then((error) => this.#begun(error)) : this.#begun(outcome);
  }

  #prepareHook(): void | Promise<void> {
    this.#handler = new this.#app.handlerClass(this.#app, this.request, this);
    return this.#handler.prepare();
  }

  #begun(error: Reply | undefined): Reply {
    if (error === undefined) return REPLIES.senderOk();
    this.#reply = error;
    this.#close();
    return error;
  }

  /** RCPT: runs `rcpt()`; a refusal leaves the transaction open without that recipient. */
  recipient(address: string, params: EsmtpParams, dsn: RcptDsn | undefined): Maybe<Reply> {
    const outcome = this.#run('rcpt', this.#rcptHook, address, params);
    return outcome instanceof Promise
      ? outcome.then((error) => this.#recipientAnswered(error, address, params, dsn))
      : this.#recipientAnswered(outcome, address, params, dsn);
  }

  #rcptHook(address: string, params: EsmtpParams): void | Promise<void> {
    return this.#handler?.rcpt(address, params);
  }

  #recipientAnswered(error: Reply | undefined, address: string, params: EsmtpParams, dsn: RcptDsn | undefined): Reply {
    if (error !== undefined) return error;
    this.envelope.rcptTos.push(address);
    this.envelope.rcptParams.push(params);
    this.envelope.rcptDsn.push(dsn);
    return REPLIES.recipientOk();
  }

  /** DATA, or the first BDAT chunk: the handler's `beforeData()`; a refusal leaves the envelope as it is. */
  beforeData(): Maybe<Reply | undefined> {
    const handler = this.#handler;
    // Most handlers have none: no hook run, no phase change, for them.
    if (handler === undefined || handler.beforeData === RequestHandler.prototype.beforeData) return undefined;
    return this.#run('rcpt', this.#beforeDataHook, undefined, undefined);
  }

  #beforeDataHook(): void | Promise<void> {
    return this.#handler?.beforeData();
  }

  #dataHook(): void | Promise<void> {
    return this.#handler?.data();
  }

  /** Whether the handler reads the message as a stream (`static streaming = true`). */
  get streaming(): boolean {
    return this.#app.handlerClass.streaming;
  }

  /**
   * The data starts. For a streaming handler, `data()` runs from now on, reading the stream this
   * returns; `null` for a buffered handler, whose `data()` waits for {@link message}.
   */
  openMessage(recycler: ReadBufferRecycler | null = null): MessageStream | null {
    if (!this.streaming) return null;
    const stream = new MessageStream(recycler);
    this.#stream = stream;
    this.request.setStream(stream);
    const app = this.#app as ServedApplication<object>;
    const verifier = verifierOf(app.settings, app.services);
    if (verifier !== undefined) this.#verifying = authenticateStream(verifier, stream, this.request, app.settings.dmarcEnforce);
    // The time limit starts at the end of the data: reading a large message may take long.
    const outcome = this.#run('data', this.#dataHook, undefined, undefined, false);
    this.#streamOutcome = outcome;
    // data() is done: what it has not read is dropped, so the client can finish sending.
    void andThen(outcome, () => stream.discard());
    return stream;
  }

  /** The whole message arrived: `data()` (or, streaming, its end), then the reply, and the transaction ends. */
  message(body: Buffer, size: number): Maybe<MessageReplies> {
    this.#size = size;
    let outcome: Maybe<Reply | undefined>;
    const stream = this.#stream;
    if (stream === null) {
      const app = this.#app as ServedApplication<object>;
      const verifier = verifierOf(app.settings, app.services);
      if (verifier === undefined) {
        this.request.setBody(body);
        outcome = this.#run('data', this.#dataHook, undefined, undefined);
      } else {
        const hook = async (): Promise<void> => {
          await authenticateBody(verifier, body, this.request, app.settings.dmarcEnforce);
          return this.#handler?.data();
        };
        outcome = this.#run('data', hook, undefined, undefined);
      }
    } else {
      stream.complete();
      const running = this.#streamOutcome;
      outcome = running instanceof Promise ? this.#timed(running, 'data') : running;
      const verifying = this.#verifying;
      // The handler's answer stands if it failed; else the verdict may still refuse the message.
      if (verifying !== undefined)
        outcome = chain(outcome, (error) =>
          error !== undefined
            ? error
            : verifying.then(
                () => undefined,
                (err: unknown) => this.#errorReply(err, 'data'),
              ),
        );
    }
    return outcome instanceof Promise ? outcome.then((error) => this.#answered(error, size)) : this.#answered(outcome, size);
  }

  /** The message's reply, once `data()` (and any verification) is done; the transaction ends. */
  #answered(error: Reply | undefined, size: number): MessageReplies {
    try {
      if (error !== undefined && !this.#finished) {
        this.#reply = error;
        return this.#replies(error);
      }
      if (error !== undefined) this.log.warn('data() failed after finish(); the 250 stands');
      this.#finished = true;
      // The level is the application logger's, which the connection's and the message's inherit:
      // no child logger is made just to ask.
      if (this.#app.logger.isLevelEnabled('info')) {
        const failed = this.#failures === null ? undefined : [...this.#failures.keys()].map((i) => this.envelope.rcptTos[i]);
        const client = clientLabel(this.request.session);
        this.log.info({ client, from: this.envelope.mailFrom, to: this.envelope.rcptTos, size, failed }, 'message accepted');
      }
      this.#reply = REPLIES.queued(this.request.id, this.#finishText);
      return this.#replies(this.#reply);
    } finally {
      this.#close();
    }
  }

  /**
   * The server refuses the message once its data is in (too big, over the memory budget, bare
   * line ends): a streaming handler's stream fails with `error`, and the transaction ends.
   */
  refuseMessage(reply: Reply, error: Error): MessageReplies {
    this.#stream?.fail(error);
    this.#reply = reply;
    this.#close();
    return this.#replies(reply);
  }

  /** The message passed `maxMessageSize` while streaming: the stream fails now, the reply comes after the data. */
  overflow(error: Error): void {
    this.#stream?.fail(error);
  }

  /** `data()` refuses one recipient (LMTP). */
  failRecipient(recipient: number | string, error: Reply): void {
    if (!(this.#app as ServedApplication<object>).settings.lmtp) {
      throw new Error('failRecipient() is for LMTP; in SMTP one reply covers every recipient: throw an SMTPError');
    }
    if (this.#phase !== 'data') throw new Error('failRecipient() refuses a recipient after the data: call it from data()');
    if (error.code < 400) throw new RangeError(`failRecipient() takes a 4xx or 5xx reply, not ${error.code}`);
    const indexes = recipientIndexes(this.envelope.rcptTos, recipient);
    const failures = (this.#failures ??= new Map());
    for (const i of indexes) failures.set(i, error);
  }

  /** The reply, or in LMTP one line per recipient: a refusal for all, else each one's own. */
  #replies(reply: Reply): MessageReplies {
    if (!(this.#app as ServedApplication<object>).settings.lmtp) return reply;
    const failures = reply.code < 400 ? this.#failures : null;
    return this.envelope.rcptTos.map((_, i) => failures?.get(i) ?? reply);
  }

  /**
   * RSET, a new EHLO, a refused message, or the client going away: ends the transaction. When a
   * hook is still running, `onFinish` waits for it.
   */
  abort(connectionClosed: boolean): void {
    if (this.#ended) return;
    this.#stream?.fail(new MessageAbortedError(connectionClosed ? 'the client closed the connection' : 'the transaction was reset'));
    if (connectionClosed && !this.#connectionClosed && this.#handler !== undefined) {
      this.#connectionClosed = true;
      this.#safely('onConnectionClose', () => this.#handler?.onConnectionClose());
    }
    this.#close();
  }

  /** Ends the transaction: `onFinish` now, or once a hook that is still running settles. */
  #close(): void {
    this.#aborted = true;
    if (this.#running === 0) this.#end();
  }

  /**
   * Runs a hook; gives the error reply if it threw (sync or async), else `undefined`. A hook still
   * running after `handlerTimeout` is answered `451 4.3.0`; it goes on in the background, and what
   * it does then no longer reaches the session.
   */
  #run<A, B>(
    phase: HandlerPhase,
    hook: (this: Transaction, a: A, b: B) => void | Promise<void>,
    a: A,
    b: B,
    timed = true,
  ): Maybe<Reply | undefined> {
    this.#running++;
    this.#phase = phase;
    let result: unknown;
    try {
      result = this.#trace.call(hook, this, a, b);
    } catch (err) {
      this.#settle(phase);
      return this.#errorReply(err, phase);
    }
    if (!(result instanceof Promise)) {
      this.#settle(phase);
      return undefined;
    }
    const settled = result.then(
      () => {
        this.#settle(phase);
        return undefined;
      },
      (err: unknown) => {
        this.#settle(phase);
        return this.#errorReply(err, phase);
      },
    );
    return timed ? this.#timed(settled, phase) : settled;
  }

  /** `settled`, or `451 4.3.0` once `handlerTimeout` passes first. */
  #timed(settled: Promise<Reply | undefined>, phase: HandlerPhase): Promise<Reply | undefined> {
    const limit = (this.#app as ServedApplication<object>).settings.handlerTimeout;
    if (limit === 0) return settled;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Reply>((resolve) => {
      timer = setTimeout(() => {
        this.log.error({ phase, ms: limit }, 'handler timed out; answered 451');
        this.#trace.failed(new Error(`${phase}() did not settle within handlerTimeout (${limit} ms)`), 'timeout');
        resolve(REPLIES.localError());
      }, limit);
    });
    return Promise.race([settled, timedOut]).finally(() => clearTimeout(timer));
  }

  #settle(phase: HandlerPhase): void {
    this.#running--;
    this.#phase = phase === 'data' ? 'done' : 'idle';
    if (this.#aborted && this.#running === 0) this.#end();
  }

  #errorReply(err: unknown, phase: HandlerPhase): Reply {
    if (!(err instanceof SMTPError) && !(err instanceof DropConnection)) this.#trace.failed(err);
    return replyForError(err, REPLIES.localError(), this.log, phase);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#handler !== undefined) this.#safely('onFinish', () => this.#handler?.onFinish());
    this.#traceEnd();
  }

  /** The span ends with the transaction: its queue id, recipients, size and final reply. */
  #traceEnd(): void {
    const reply = this.#reply;
    if (this.#trace.recording)
      this.#trace.annotate(() => {
        const attributes: Record<string, string | number> = {
          'sirocco.queue_id': this.request.id,
          'sirocco.recipients': this.envelope.rcptTos.length,
        };
        if (this.#size !== undefined) attributes['sirocco.message.size'] = this.#size;
        return attributes;
      });
    endWith(this.#trace, reply, reply === undefined ? 'aborted' : reply.code < 400 ? 'accepted' : 'refused');
  }

  #safely(hook: string, fn: () => unknown): void {
    try {
      const result = fn();
      if (result instanceof Promise) result.catch((err: unknown) => this.log.error({ err, hook }, 'hook failed'));
    } catch (err) {
      this.log.error({ err, hook }, 'hook failed');
    }
  }
}
