import type { Logger } from 'pino';
import type { EsmtpParams } from '../protocol/command.js';
import { SMTPError, type Reply } from '../protocol/reply.js';
import type { BodyBudget } from './body-budget.js';
import type { SMTPRequest } from './request.js';
import type { ApplicationSettings } from './settings.js';
import type { Services } from './services.js';

/**
 * What handlers and the server need of an application: its handler class, its validated settings
 * and its logger. {@link Application} is the one users build.
 *
 * @example
 * ```ts
 * const describe = (app: ServedApplication) => `${app.handlerClass.name} on ${app.settings.hostname}`;
 * ```
 */
export interface ServedApplication<S extends object = Record<string, unknown>> {
  /** The class instantiated once per mail transaction. */
  readonly handlerClass: HandlerClass<S>;
  /** Sirocco's settings and the user's own, validated. */
  readonly settings: ApplicationSettings & S;
  /** The logger every connection's child logger derives from. */
  readonly logger: Logger;
  /** The memory budget every buffered body of the application counts against. */
  readonly bodyBudget: BodyBudget;
  /** What the application keeps for its handlers (a transport, a queue), closed with its last server. */
  readonly services: Services;
}

/**
 * Any served application, whatever its settings type: what the server side takes.
 *
 * @example
 * ```ts
 * const serve = (app: AnyServedApplication) => new SMTPServer(app).listen(2525);
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyServedApplication = ServedApplication<any>;

/**
 * The transaction a handler belongs to, as the handler sees it: its logger and the end of the
 * message. Sirocco passes it to the handler's constructor; the lifecycle state lives there.
 *
 * @example
 * ```ts
 * class Logged extends RequestHandler {
 *   constructor(app: ServedApplication, request: SMTPRequest, transaction: HandlerTransaction) {
 *     super(app, request, transaction);
 *     transaction.log.debug('handler built');
 *   }
 * }
 * ```
 */
export interface HandlerTransaction {
  /** The transaction's logger: the connection's id and the queue id on every line. */
  readonly log: Logger;
  /** Whether the message was ended with a 250. */
  readonly finished: boolean;
  /** Ends the message with a 250 (see {@link RequestHandler.finish}). */
  finish(text?: string): void;
  /** LMTP: gives one recipient its own refusal (see {@link RequestHandler.failRecipient}). */
  failRecipient(recipient: number | string, error: Reply): void;
}

/**
 * Work a handler class runs beside the server while it listens (the outbound queue of
 * `Deliver` of `sirocco/outbound`): started by {@link RequestHandler.startService}, closed with the server.
 *
 * @example
 * ```ts
 * const service: HandlerService = { close: async () => clearInterval(timer) };
 * ```
 */
export interface HandlerService {
  /** Stops the work; the server's `close()` waits for it. */
  close(): Promise<void>;
}

/**
 * A handler class, as given to an {@link Application}.
 *
 * @example
 * ```ts
 * const Handler: HandlerClass<{ domain: string }> = Inbound;
 * new Application(Handler, { domain: 'example.com' });
 * ```
 */
export type HandlerClass<S extends object = Record<string, unknown>> = (new (
  application: ServedApplication<S>,
  request: SMTPRequest,
  transaction: HandlerTransaction,
) => RequestHandler<S>) &
  HandlerStatics;

/**
 * What a handler class says of itself, as statics every {@link RequestHandler} subclass inherits.
 *
 * @example
 * ```ts
 * const streams = (Handler: HandlerClass) => Handler.streaming;
 * ```
 */
export interface HandlerStatics {
  /** Whether `data()` reads the message as a stream (see {@link RequestHandler.streaming}). */
  readonly streaming: boolean;
  /** Work beside the server (see {@link RequestHandler.startService}). */
  startService(application: AnyServedApplication): HandlerService | undefined;
}

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
 * **Buffered or streaming.** By default the body is held whole and `data()` runs once it is
 * complete, with `this.request.body`. A class that sets `static streaming = true` gets `data()`
 * as soon as the data starts, and reads `this.request.stream` while the client is still sending;
 * the reply waits for both the end of the data and `data()`. Past `maxMessageSize` the stream
 * fails with `MessageTooBigError` (the client gets `552 5.3.4`), and when the client goes away
 * or the transaction is reset it fails with `MessageAbortedError`: it never ends cleanly unless
 * the whole message arrived. A handler that stops reading early lets the rest be dropped.
 *
 * **LMTP.** With the `lmtp` setting each recipient gets its own reply after the data; `data()`
 * refuses some of them with {@link failRecipient}. A throw still answers every recipient.
 *
 * Decisions about the connection rather than one transaction (refusing a client at connect, or
 * by its HELO name) are the application's: the `onConnect` and `onHelo` settings.
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
  /**
   * Whether `data()` reads the message as a stream while it arrives (`this.request.stream`)
   * instead of receiving it whole (`this.request.body`). Set it on your subclass:
   * `static override streaming = true`.
   */
  static streaming = false;

  /**
   * Starts work that runs beside the server, once per server in each process that serves (each
   * worker of `start(n)`, not the primary), when it starts listening; the server's `close()`
   * closes it. Nothing by default. Override it as a static method.
   *
   * @example
   * ```ts
   * class Reporting extends RequestHandler {
   *   static override startService(app: AnyServedApplication): HandlerService {
   *     const timer = setInterval(() => app.logger.info('still here'), 60_000);
   *     return { close: async () => clearInterval(timer) };
   *   }
   * }
   * ```
   */
  static startService(_application: AnyServedApplication): HandlerService | undefined {
    return undefined;
  }

  /** The application this handler belongs to. */
  readonly application: ServedApplication<S>;
  /** The transaction: session, envelope and, in `data()`, the body. */
  readonly request: SMTPRequest;
  readonly #transaction: HandlerTransaction;

  /**
   * Sirocco builds handlers; a subclass that takes its own constructor must pass these through.
   * @param transaction the transaction driving this handler: its logger and `finish()`.
   */
  constructor(application: ServedApplication<S>, request: SMTPRequest, transaction: HandlerTransaction) {
    this.application = application;
    this.request = request;
    this.#transaction = transaction;
  }

  /** A pino logger carrying the connection's id and the queue id. */
  get log(): Logger {
    return this.#transaction.log;
  }

  /** The application's settings (an alias of `this.application.settings`). */
  get settings(): ApplicationSettings & S {
    return this.application.settings;
  }

  /** Called at MAIL; `this.request.mailFrom` is set. Throw an `SMTPError` to refuse the sender. */
  prepare(): void | Promise<void> {}

  /** Called for each RCPT before the recipient is added. Throw an `SMTPError` to refuse it. */
  rcpt(_address: string, _params: EsmtpParams): void | Promise<void> {}

  /**
   * Called at DATA (or the first BDAT chunk), before the client sends the message. Throw an
   * `SMTPError` to refuse the message before it is sent (the reply takes the 354's place); the
   * envelope stays, so the client may RSET or QUIT.
   */
  beforeData(): void | Promise<void> {}

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
    this.#transaction.finish(text);
  }

  /**
   * LMTP only: refuses one recipient after the data, while the others get `250` (RFC 2033 §4.2).
   * `recipient` is an index into `this.request.rcptTos`, or an address (every entry with it).
   * Call it from `data()`. In SMTP, where one reply covers every recipient, it throws.
   *
   * @example
   * ```ts
   * if (mailboxFull(this.request.rcptTos[1])) this.failRecipient(1, new SMTPError(452, [4, 2, 2], 'Mailbox full'));
   * ```
   */
  failRecipient(recipient: number | string, error: SMTPError | Reply): void {
    this.#transaction.failRecipient(recipient, error instanceof SMTPError ? error.toReply() : error);
  }

  /** Whether `finish()` has been called. */
  get finished(): boolean {
    return this.#transaction.finished;
  }
}
