/**
 * The RequestHandler lifecycle, written once. Every path out of every hook produces exactly one
 * reply, and `onFinish` runs exactly once per transaction.
 *
 * Hooks that return without a promise are run without one: the common synchronous handler pays
 * no microtask per command. Results are therefore `T | Promise<T>` (`Maybe`).
 */
import type { Logger } from 'pino';
import type { EsmtpParams } from '../protocol/command.js';
import type { DecodedMessage } from '../protocol/data-decoder.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';
import type { SessionInfo } from '../protocol/session-info.js';
import { replyForError } from './errors.js';
import { andThen, type Maybe } from './maybe.js';
import { SMTPRequest, type Envelope } from './request.js';
import type { AnyServedApplication, HandlerTransaction, RequestHandler, ServedApplication } from './request-handler.js';

/** Where a handler is in its lifecycle; `finish()` is only allowed in `data`. */
type HandlerPhase = 'prepare' | 'rcpt' | 'idle' | 'data' | 'done';

/** The envelope as the server builds it. */
export interface MutableEnvelope extends Envelope {
  rcptTos: string[];
  rcptParams: EsmtpParams[];
}

export class Transaction implements HandlerTransaction {
  readonly request: SMTPRequest;
  readonly envelope: MutableEnvelope;
  readonly #app: AnyServedApplication;
  readonly #connectionLog: Logger;
  #log: Logger | undefined;
  #handler: RequestHandler<object> | undefined;
  #phase: HandlerPhase = 'prepare';
  #finished = false;
  #finishText: string | undefined;
  #running = 0;
  #aborted = false;
  #connectionClosed = false;
  #ended = false;

  constructor(app: AnyServedApplication, session: SessionInfo, envelope: MutableEnvelope, log: Logger) {
    this.#app = app;
    this.envelope = envelope;
    this.request = new SMTPRequest(session, envelope);
    this.#connectionLog = log;
  }

  /** Whether the transaction is over (`onFinish` ran or is due once a running hook settles). */
  get ended(): boolean {
    return this.#ended || this.#aborted;
  }

  /** The transaction's one logger, made on first use (it carries the queue id); the handler's too. */
  get log(): Logger {
    this.#log ??= this.#connectionLog.child({ queueId: this.request.id });
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
    const outcome = this.#run('prepare', () => {
      this.#handler = new this.#app.handlerClass(this.#app, this.request, this);
      return this.#handler.prepare();
    });
    return andThen(outcome, (error) => {
      if (error === undefined) return REPLIES.senderOk();
      this.#close();
      return error;
    });
  }

  /** RCPT: runs `rcpt()`; a refusal leaves the transaction open without that recipient. */
  recipient(address: string, params: EsmtpParams): Maybe<Reply> {
    return andThen(
      this.#run('rcpt', () => this.#handler?.rcpt(address, params)),
      (error) => {
        if (error !== undefined) return error;
        this.envelope.rcptTos.push(address);
        this.envelope.rcptParams.push(params);
        return REPLIES.recipientOk();
      },
    );
  }

  /** End of data: runs `data()` and ends the transaction. */
  message(decoded: DecodedMessage): Maybe<Reply> {
    this.request.setBody(decoded.body);
    return andThen(
      this.#run('data', () => this.#handler?.data()),
      (error) => {
        try {
          if (error !== undefined && !this.#finished) return error;
          if (error !== undefined) this.log.warn('data() failed after finish(); the 250 stands');
          this.#finished = true;
          // The level is the connection logger's: no per-message child logger just to ask.
          if (this.#connectionLog.isLevelEnabled('info')) {
            this.log.info({ from: this.envelope.mailFrom, to: this.envelope.rcptTos, size: decoded.size }, 'message accepted');
          }
          return REPLIES.queued(this.request.id, this.#finishText);
        } finally {
          this.#close();
        }
      },
    );
  }

  /**
   * RSET, a new EHLO, a refused message, or the client going away: ends the transaction. When a
   * hook is still running, `onFinish` waits for it.
   */
  abort(connectionClosed: boolean): void {
    if (this.#ended) return;
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
  #run(phase: HandlerPhase, hook: () => void | Promise<void>): Maybe<Reply | undefined> {
    this.#running++;
    this.#phase = phase;
    let result: unknown;
    try {
      result = hook();
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
    const limit = (this.#app as ServedApplication<object>).settings.handlerTimeout;
    if (limit === 0) return settled;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Reply>((resolve) => {
      timer = setTimeout(() => {
        this.log.error({ phase, ms: limit }, 'handler timed out; answered 451');
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
    return replyForError(err, REPLIES.localError(), this.log, phase);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#handler !== undefined) this.#safely('onFinish', () => this.#handler?.onFinish());
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
