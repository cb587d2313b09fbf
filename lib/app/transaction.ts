/**
 * The RequestHandler lifecycle, written once. Every path out of every hook produces exactly one
 * reply, and `onFinish` runs exactly once per transaction.
 *
 * Hooks that return without a promise are run without one: the common synchronous handler pays
 * no microtask per command. Results are therefore `T | Promise<T>` ({@link Maybe}).
 */
import type { Logger } from 'pino';
import type { EsmtpParams } from '../protocol/command.js';
import type { DecodedMessage } from '../protocol/data-decoder.js';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError, type Reply } from '../protocol/reply.js';
import type { AnyApplication } from './application.js';
import { SMTPRequest, type Envelope, type SessionInfo } from './request.js';
import { handlerState, type HandlerPhase, type RequestHandler } from './request-handler.js';

/** A value now, or later. */
export type Maybe<T> = T | Promise<T>;

/** Applies `f` to a value now, or once it is there. */
export function andThen<T, U>(value: Maybe<T>, f: (v: T) => U): Maybe<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}

/** The envelope as the server builds it. */
export interface MutableEnvelope extends Envelope {
  rcptTos: string[];
  rcptParams: EsmtpParams[];
}

export class Transaction {
  readonly request: SMTPRequest;
  readonly envelope: MutableEnvelope;
  readonly #app: AnyApplication;
  readonly #connectionLog: Logger;
  #log: Logger | undefined;
  #handler: RequestHandler<object> | undefined;
  #running = 0;
  #aborted = false;
  #connectionClosed = false;
  #ended = false;

  constructor(app: AnyApplication, session: SessionInfo, envelope: MutableEnvelope, log: Logger) {
    this.#app = app;
    this.envelope = envelope;
    this.request = new SMTPRequest(session, envelope);
    this.#connectionLog = log;
  }

  /** Whether the transaction is over (`onFinish` ran or is due once a running hook settles). */
  get ended(): boolean {
    return this.#ended || this.#aborted;
  }

  /** The transaction's logger, made on first use (it carries the queue id). */
  get log(): Logger {
    this.#log ??= this.#connectionLog.child({ queueId: this.request.id });
    return this.#log;
  }

  /** MAIL: builds the handler and runs `prepare()`. A refusal ends the transaction. */
  begin(): Maybe<Reply> {
    const outcome = this.#run('prepare', () => {
      this.#handler = new (this.#app.handlerClass as HandlerConstructor)(this.#app, this.request, this.#connectionLog);
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
    const handler = this.#handler;
    const state = handler === undefined ? undefined : handlerState(handler);
    return andThen(
      this.#run('data', () => handler?.data()),
      (error) => {
        try {
          if (error !== undefined && state?.finished !== true) return error;
          if (error !== undefined) this.log.warn('data() failed after finish(); the 250 stands');
          if (state !== undefined) state.finished = true;
          // The level is the connection logger's: no per-message child logger just to ask.
          if (this.#connectionLog.isLevelEnabled('info')) {
            this.log.info({ from: this.envelope.mailFrom, to: this.envelope.rcptTos, size: decoded.size }, 'message accepted');
          }
          return REPLIES.queued(this.request.id, state?.finishText);
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
    this.#setPhase(phase);
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
    const limit = (this.#app.settings as { handlerTimeout: number }).handlerTimeout;
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
    this.#setPhase(phase === 'data' ? 'done' : 'idle');
    if (this.#aborted && this.#running === 0) this.#end();
  }

  #setPhase(phase: HandlerPhase): void {
    if (this.#handler !== undefined) handlerState(this.#handler).phase = phase;
  }

  #errorReply(err: unknown, phase: HandlerPhase): Reply {
    if (err instanceof SMTPError) {
      this.log.info({ phase, code: err.code }, err.logMessage);
      return err.toReply();
    }
    this.log.error({ phase, err }, 'handler failed');
    return REPLIES.localError();
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

type HandlerConstructor = new (app: AnyApplication, request: SMTPRequest, log: Logger) => RequestHandler<object>;
