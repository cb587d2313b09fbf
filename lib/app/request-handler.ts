import type { Logger } from 'pino';
import type { EsmtpParams } from '../protocol/command.js';
import type { Application } from './application.js';
import type { SMTPRequest } from './request.js';
import type { ApplicationSettings } from './settings.js';

/** Where a handler is in its lifecycle; `finish()` is only allowed in `data`. */
export type HandlerPhase = 'prepare' | 'rcpt' | 'idle' | 'data' | 'done';

/** @internal The lifecycle driver's view of a handler. */
export interface HandlerState {
  phase: HandlerPhase;
  finished: boolean;
  finishText: string | undefined;
}

/** @internal The lifecycle state of a handler (a private field, read by the lifecycle driver). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export let handlerState: (handler: RequestHandler<any>) => HandlerState;

/**
 * A handler class, as given to an {@link Application}.
 *
 * @example
 * ```ts
 * const Handler: HandlerClass<{ domain: string }> = Inbound;
 * new Application(Handler, { domain: 'example.com' });
 * ```
 */
export type HandlerClass<S extends object = Record<string, unknown>> = new (
  application: Application<S>,
  request: SMTPRequest,
  log: Logger,
) => RequestHandler<S>;

/**
 * Any handler class, whatever its settings type: what code that only runs handlers takes.
 *
 * @example
 * ```ts
 * const handlers: Record<string, AnyHandlerClass> = { sink: Sink, maildir: Maildir };
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyHandlerClass = HandlerClass<any>;

/**
 * Subclass this to receive mail. One instance serves one mail transaction, from MAIL to the end
 * of the data (or to RSET, or to the client's going away).
 *
 * The lifecycle, driven once in one place:
 * 1. `prepare()` when MAIL arrives. Throw an {@link SMTPError} to refuse the sender.
 * 2. `rcpt(address)` for each RCPT. Throw to refuse that recipient; the others stay.
 * 3. `data()` once the message is complete. Returning answers `250 2.0.0 Ok: queued as <id>`;
 *    throwing an `SMTPError` answers with it; any other error is logged and answered `451 4.3.0`.
 * 4. `onFinish()` exactly once, after the reply, whatever happened before (refusal, RSET, error,
 *    disconnection).
 *
 * `onConnectionClose()` runs if the client goes away while the transaction is open, then
 * `onFinish()` still runs once any hook still running has settled.
 *
 * @example
 * ```ts
 * class Inbound extends RequestHandler<{ domain: string }> {
 *   override rcpt(address: string) {
 *     if (!address.endsWith('@' + this.settings.domain))
 *       throw new SMTPError(550, [5, 7, 1], 'not relaying to that domain');
 *   }
 *   override async data() {
 *     await saveSomewhere(this.request.body);
 *   }
 * }
 * ```
 */
export class RequestHandler<S extends object = Record<string, unknown>> {
  /** The application this handler belongs to. */
  readonly application: Application<S>;
  /** The transaction: session, envelope and, in `data()`, the body. */
  readonly request: SMTPRequest;
  readonly #connectionLog: Logger;
  #log: Logger | undefined;
  readonly #state: HandlerState = { phase: 'prepare', finished: false, finishText: undefined };

  static {
    handlerState = (handler) => handler.#state;
  }

  /**
   * Sirocco builds handlers; a subclass that takes its own constructor must pass these through.
   * @param log the connection's logger; the `log` property derives the transaction's from it.
   */
  constructor(application: Application<S>, request: SMTPRequest, log: Logger) {
    this.application = application;
    this.request = request;
    this.#connectionLog = log;
  }

  /** A pino logger carrying the connection's id and the queue id, made on first use. */
  get log(): Logger {
    this.#log ??= this.#connectionLog.child({ queueId: this.request.id });
    return this.#log;
  }

  /** The application's settings (an alias of `this.application.settings`). */
  get settings(): ApplicationSettings & S {
    return this.application.settings;
  }

  /** Called at MAIL; `this.request.mailFrom` is set. Throw an `SMTPError` to refuse the sender. */
  prepare(): void | Promise<void> {}

  /** Called for each RCPT before the recipient is added. Throw an `SMTPError` to refuse it. */
  rcpt(_address: string, _params: EsmtpParams): void | Promise<void> {}

  /** Called once the whole message is in `this.request.body`. */
  data(): void | Promise<void> {}

  /** Called exactly once at the end of the transaction, after its reply was sent. */
  onFinish(): void {}

  /** Called when the client closes the connection while this transaction is open. */
  onConnectionClose(): void {}

  /**
   * Ends the message with a 250 reply, optionally with your own text. Only valid in `data()`;
   * `data()` returning calls it for you. A second call throws.
   */
  finish(text?: string): void {
    const state = this.#state;
    if (state.finished) throw new Error('finish() was already called for this message');
    if (state.phase !== 'data') throw new Error('finish() ends a message: call it from data()');
    state.finished = true;
    state.finishText = text;
  }

  /** Whether `finish()` has been called. */
  get finished(): boolean {
    return this.#state.finished;
  }
}
