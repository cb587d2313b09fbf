/**
 * The RequestHandler lifecycle, written once. Every path out of every hook produces exactly one
 * reply, and `onFinish` runs exactly once per transaction.
 */
import type { Logger } from 'pino';
import type { EsmtpParams } from '../protocol/command.js';
import type { DecodedMessage } from '../protocol/data-decoder.js';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError, type Reply } from '../protocol/reply.js';
import type { AnyApplication } from './application.js';
import { SMTPRequest, type Envelope, type SessionInfo } from './request.js';
import { HANDLER_STATE, type HandlerPhase, type RequestHandler } from './request-handler.js';

/** The envelope as the server builds it. */
export interface MutableEnvelope extends Envelope {
  rcptTos: string[];
  rcptParams: EsmtpParams[];
}

export class Transaction {
  readonly request: SMTPRequest;
  readonly envelope: MutableEnvelope;
  readonly #app: AnyApplication;
  readonly #log: Logger;
  #handler: RequestHandler<object> | undefined;
  #running = 0;
  #aborted = false;
  #connectionClosed = false;
  #ended = false;

  constructor(app: AnyApplication, session: SessionInfo, envelope: MutableEnvelope, log: Logger) {
    this.#app = app;
    this.envelope = envelope;
    this.request = new SMTPRequest(session, envelope);
    this.#log = log.child({ queueId: this.request.id });
  }

  /** Whether the transaction is over (`onFinish` ran or is due once a running hook settles). */
  get ended(): boolean {
    return this.#ended || this.#aborted;
  }

  /** MAIL: builds the handler and runs `prepare()`. A refusal ends the transaction. */
  async begin(): Promise<Reply> {
    const reply = await this.#run('prepare', () => {
      this.#handler = new this.#app.handlerClass(this.#app, this.request, this.#log);
      return this.#handler.prepare();
    });
    if (reply !== undefined) {
      this.#end();
      return reply;
    }
    return REPLIES.senderOk();
  }

  /** RCPT: runs `rcpt()`; a refusal leaves the transaction open without that recipient. */
  async recipient(address: string, params: EsmtpParams): Promise<Reply> {
    const reply = await this.#run('rcpt', () => this.#handler?.rcpt(address, params));
    if (reply !== undefined) return reply;
    this.envelope.rcptTos.push(address);
    this.envelope.rcptParams.push(params);
    return REPLIES.recipientOk();
  }

  /** End of data: runs `data()` and ends the transaction. */
  async message(decoded: DecodedMessage): Promise<Reply> {
    this.request.setBody(decoded.body);
    const handler = this.#handler;
    const state = handler === undefined ? undefined : HANDLER_STATE.get(handler);
    try {
      const error = await this.#run('data', () => handler?.data());
      if (error !== undefined && state?.finished !== true) return error;
      if (error !== undefined) this.#log.warn('data() failed after finish(); the 250 stands');
      if (state !== undefined && !state.finished) {
        state.finished = true;
      }
      this.#log.info({ from: this.envelope.mailFrom, to: this.envelope.rcptTos, size: decoded.size }, 'message accepted');
      return REPLIES.queued(this.request.id, state?.finishText);
    } finally {
      this.#end();
    }
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
    this.#aborted = true;
    if (this.#running === 0) this.#end();
  }

  /** Runs a hook; resolves to the error reply if it threw, else `undefined`. */
  async #run(phase: HandlerPhase, hook: () => void | Promise<void>): Promise<Reply | undefined> {
    this.#running++;
    this.#setPhase(phase);
    try {
      await hook();
      return undefined;
    } catch (err) {
      return this.#errorReply(err, phase);
    } finally {
      this.#running--;
      this.#setPhase(phase === 'data' ? 'done' : 'idle');
      if (this.#aborted && this.#running === 0) this.#end();
    }
  }

  #setPhase(phase: HandlerPhase): void {
    const state = this.#handler === undefined ? undefined : HANDLER_STATE.get(this.#handler);
    if (state !== undefined) state.phase = phase;
  }

  #errorReply(err: unknown, phase: HandlerPhase): Reply {
    if (err instanceof SMTPError) {
      this.#log.info({ phase, code: err.code }, err.logMessage);
      return err.toReply();
    }
    this.#log.error({ phase, err }, 'handler failed');
    return REPLIES.localError();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#handler !== undefined) this.#safely('onFinish', () => this.#handler?.onFinish());
  }

  #safely(hook: string, fn: () => void): void {
    try {
      const result: unknown = fn();
      if (result instanceof Promise) result.catch((err: unknown) => this.#log.error({ err, hook }, 'hook failed'));
    } catch (err) {
      this.#log.error({ err, hook }, 'hook failed');
    }
  }
}
