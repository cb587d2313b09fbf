/**
 * Message intake: the open mail transaction of one connection, from MAIL through RCPT to the end
 * of the data. It builds the {@link Transaction} that runs the handler's hooks, feeds the data to
 * the DATA decoder, sends each hook's reply through the connection's writer, and tells the
 * session how each hook answered. The connection hands it the decisions `mail`, `rcpt` and `data`.
 */
import type { Logger } from 'pino';
import type { AnyServedApplication } from '../app/request-handler.js';
import type { ApplicationSettings } from '../app/settings.js';
import { Transaction } from '../app/transaction.js';
import type { Maybe } from '../app/maybe.js';
import type { EsmtpParams } from '../protocol/command.js';
import { DataDecoder } from '../protocol/data-decoder.js';
import type { LineSplitter } from '../protocol/line-splitter.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';
import type { MailCommand, Session } from '../protocol/session.js';
import { DRY, type InputPump, type StepResult } from './input-pump.js';
import type { ReplyWriter } from './reply-writer.js';

export class Intake {
  readonly #app: AnyServedApplication;
  readonly #settings: ApplicationSettings;
  readonly #session: Session;
  readonly #writer: ReplyWriter;
  readonly #pump: InputPump;
  readonly #log: Logger;
  #decoder: DataDecoder | null = null;
  #transaction: Transaction | null = null;
  /** The transaction whose data() is running, after the session has left the data state. */
  #delivering: Transaction | null = null;

  constructor(app: AnyServedApplication, session: Session, writer: ReplyWriter, pump: InputPump, log: Logger) {
    this.#app = app;
    this.#settings = app.settings as ApplicationSettings;
    this.#session = session;
    this.#writer = writer;
    this.#pump = pump;
    this.#log = log;
  }

  /** Whether the message data is being read: input goes to {@link takeData}, not the line parser. */
  get readingData(): boolean {
    return this.#decoder !== null;
  }

  /** MAIL: a new transaction, and the handler's `prepare()`. */
  mail(command: MailCommand): Promise<void> | undefined {
    const transaction = new Transaction(
      this.#app,
      this.#session.info(),
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
    return this.#hook(transaction.begin(), () => {
      const accepted = !transaction.ended;
      if (!accepted && this.#transaction === transaction) this.#transaction = null;
      this.#session.mailAnswered(accepted);
    });
  }

  /** RCPT: the handler's `rcpt()`. */
  rcpt(address: string, params: EsmtpParams): Promise<void> | undefined {
    const transaction = this.#transaction;
    if (transaction === null) throw new Error('RCPT without a transaction');
    return this.#hook(transaction.recipient(address, params), (reply) => this.#session.rcptAnswered(reply.code < 400));
  }

  /** DATA was accepted: the 354, then the data is read. */
  startData(ready: Reply): void {
    this.#decoder = new DataDecoder(this.#settings.maxMessageSize, this.#settings.bareLineEndings);
    this.#writer.add(ready);
  }

  /** Feeds what the client sent to the decoder; at the end of the data, the handler's `data()`. */
  takeData(lines: LineSplitter): StepResult {
    const decoder = this.#decoder;
    if (decoder === null) throw new Error('no data is being read');
    const chunk = lines.takeAll();
    if (chunk === null) return DRY;
    const rest = decoder.push(chunk);
    if (rest === undefined) return undefined;
    lines.unshift(rest);
    return this.#endOfData(decoder);
  }

  #endOfData(decoder: DataDecoder): Promise<void> | undefined {
    const transaction = this.#transaction;
    // Leave the data state before anything can fail: the next line is a command again.
    this.#decoder = null;
    this.#transaction = null;
    this.#session.dataEnded();
    if (transaction === null) throw new Error('end of data without a transaction');
    const message = decoder.result();
    if (message.tooBig) {
      transaction.abort(false);
      this.#writer.add(REPLIES.messageTooBig());
      return undefined;
    }
    if (message.bareLineEndings && this.#settings.bareLineEndings === 'reject') {
      transaction.abort(false);
      this.#writer.add(REPLIES.bareLineEndingsInBody());
      return undefined;
    }
    this.#delivering = transaction;
    return this.#hook(transaction.message(message), () => {
      this.#delivering = null;
    });
  }

  /** Sends a handler hook's reply, at once or once the hook settles. */
  #hook(outcome: Maybe<Reply>, after: (reply: Reply) => void): Promise<void> | undefined {
    return this.#pump.wait(outcome, (reply) => {
      after(reply);
      this.#writer.add(reply);
      return undefined;
    });
  }

  /** RSET, a new HELO/EHLO, STARTTLS: the open transaction ends. */
  abort(): void {
    this.#transaction?.abort(false);
    this.#transaction = null;
  }

  /** The client went away: the open transaction, and one whose `data()` still runs, hear of it. */
  connectionClosed(): void {
    this.#decoder = null;
    this.#transaction?.abort(true);
    this.#delivering?.abort(true);
    this.#transaction = null;
  }
}
