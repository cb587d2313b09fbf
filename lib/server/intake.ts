/**
 * The mail transaction of one connection, from MAIL to the reply after the message: the driver
 * of the handler's lifecycle. The connection hands it the decisions `mail`, `rcpt`, `data`,
 * `bdat` and `skip`; the {@link BodyReader} reads the message's bytes and tells it when the
 * message is whole. Every step, in one place:
 *
 * | step | from | the {@link Transaction} runs | reply | the transaction ends |
 * |---|---|---|---|---|
 * | `mail` | MAIL | the handler is made, `prepare()` | `250 2.1.0`, or its refusal | when refused |
 * | `rcpt` | RCPT | `rcpt(address)` | `250 2.1.5`, or its refusal | no |
 * | `startData` | DATA | `beforeData()`, then the body opens (the budget may say `452 4.3.1`) | `354`, or the refusal | no |
 * | `startChunk` | the first BDAT | `beforeData()`, the body opens; the chunk is read even when refused | `250 2.0.0` per chunk | when refused |
 * | `ended` | the final dot, BDAT LAST | `data()` (a streaming handler's has run since the body opened) | `250 2.0.0 queued`, its refusal, or one per recipient (LMTP) | yes |
 * | `abort` | RSET, HELO/EHLO, STARTTLS, a refused chunk | a streaming handler's stream fails | — | yes |
 * | `connectionClosed` | the client left | `onConnectionClose()`, the stream fails | — | yes |
 *
 * `onFinish()` runs once per transaction, after whichever step ended it (and after a hook still
 * running settles). Memory stays bounded: a streaming handler's reader sets the pace, a buffered
 * handler's body counts against the application's budget, and a body past `maxMessageSize` is read
 * and dropped.
 */
import type { BodyBudget } from '../app/body-budget.js';
import type { Maybe } from '../app/maybe.js';
import type { AnyServedApplication } from '../app/request-handler.js';
import type { ApplicationSettings } from '../app/settings.js';
import { Transaction, type LogSource, type MessageReplies } from '../app/transaction.js';
import type { Traced } from '../app/tracing.js';
import type { EsmtpParams } from '../protocol/command.js';
import type { RcptDsn } from '../protocol/dsn.js';
import type { LineSplitter } from '../protocol/line-splitter.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';
import type { MailCommand, Session } from '../protocol/session.js';
import { asPending, type InputPump, type StepResult } from '../net/input-pump.js';
import { BodyReader, type BodyReaderOwner, type DataRefusal } from './body-reader.js';
import { MessageBody } from './message-body.js';
import type { ServerMetrics, TimedHook } from './metrics.js';
import type { ReplyWriter } from './reply-writer.js';

export class Intake implements BodyReaderOwner {
  readonly #app: AnyServedApplication;
  readonly #settings: ApplicationSettings;
  readonly #budget: BodyBudget;
  readonly #session: Session;
  readonly #writer: ReplyWriter;
  readonly #pump: InputPump;
  readonly #logs: LogSource;
  /** Made at the first message, so a connection that sends none holds no reader. */
  #reader: BodyReader | null = null;
  /** The open message's body, from DATA or the first BDAT chunk to the end of the message. */
  #body: MessageBody | null = null;
  #transaction: Transaction | null = null;
  /** The transaction whose data() is running, after the session has left the data state. */
  #delivering: Transaction | null = null;
  readonly #metrics: ServerMetrics | null;
  /** The session's span: each transaction's span is its child. */
  readonly #trace: Traced | null;

  constructor(
    app: AnyServedApplication,
    session: Session,
    writer: ReplyWriter,
    pump: InputPump,
    logs: LogSource,
    metrics: ServerMetrics | null = null,
    trace: Traced | null = null,
  ) {
    this.#metrics = metrics;
    this.#trace = trace;
    this.#app = app;
    this.#settings = app.settings as ApplicationSettings;
    this.#budget = app.bodyBudget;
    this.#session = session;
    this.#writer = writer;
    this.#pump = pump;
    this.#logs = logs;
  }

  #bodyReader(): BodyReader {
    return (this.#reader ??= new BodyReader(this.#settings, this.#session, this.#writer, this.#pump, this));
  }

  /** Whether message bytes are being read: input goes to {@link takeData}, not the line parser. */
  get readingData(): boolean {
    return this.#reader?.reading ?? false;
  }

  /** Feeds what the client sent to the message (see {@link BodyReader.take}). */
  takeData(lines: LineSplitter): StepResult {
    return this.#bodyReader().take(lines);
  }

  /** MAIL: a new transaction, and the handler's `prepare()`. */
  mail(command: MailCommand): Promise<void> | undefined {
    const transaction = new Transaction(
      this.#app,
      this.#session.info(),
      {
        mailFrom: command.address,
        mailParams: command.params,
        rcptTos: roomForOne(),
        rcptParams: roomForOne(),
        rcptDsn: roomForOne(),
        smtputf8: command.smtputf8,
        bodyType: command.body,
        declaredSize: command.size,
        requireTls: command.requireTls,
        dsn: command.dsn,
      },
      this.#logs,
      this.#trace,
    );
    this.#transaction = transaction;
    const started = this.#metrics === null ? 0 : performance.now();
    const outcome = transaction.begin();
    // A synchronous hook (the common case) is answered here: no closure is made for it.
    if (!(outcome instanceof Promise)) return this.#mailAnswered(transaction, started, outcome);
    return this.#pump.wait(outcome, (reply) => this.#mailAnswered(transaction, started, reply));
  }

  #mailAnswered(transaction: Transaction, started: number, reply: Reply): undefined {
    const accepted = !transaction.ended;
    if (!accepted && this.#transaction === transaction) this.#transaction = null;
    this.#session.mailAnswered(accepted);
    this.#timed('prepare', started);
    if (accepted) this.#metrics?.transaction('started');
    this.#writer.add(reply);
    return undefined;
  }

  /** RCPT: the handler's `rcpt()`. */
  rcpt(address: string, params: EsmtpParams, dsn: RcptDsn | undefined): Promise<void> | undefined {
    const transaction = this.#transaction;
    if (transaction === null) throw new Error('RCPT without a transaction');
    const started = this.#metrics === null ? 0 : performance.now();
    const outcome = transaction.recipient(address, params, dsn);
    if (!(outcome instanceof Promise)) return this.#rcptAnswered(started, outcome);
    return this.#pump.wait(outcome, (reply) => this.#rcptAnswered(started, reply));
  }

  #rcptAnswered(started: number, reply: Reply): undefined {
    this.#session.rcptAnswered(reply.code < 400);
    this.#timed('rcpt', started);
    this.#writer.add(reply);
    return undefined;
  }

  /**
   * DATA was accepted: the handler's `beforeData()`, then the 354 and the data, or its refusal,
   * or 452 4.3.1 when the memory budget is spent.
   */
  startData(ready: Reply): Promise<void> | undefined {
    const verdict = this.#transaction?.beforeData();
    if (verdict === undefined) {
      this.#openData(ready);
      return undefined;
    }
    return this.#pump.wait(verdict, (refusal) => {
      if (refusal === undefined) {
        this.#openData(ready);
      } else {
        this.#session.dataRefused();
        this.#writer.add(refusal);
      }
      return undefined;
    });
  }

  #openData(ready: Reply): void {
    const body = this.#openBody(this.#transaction?.envelope.declaredSize ?? 0);
    if (body === null) {
      this.#session.dataRefused();
      this.#writer.add(REPLIES.insufficientStorage());
      return;
    }
    this.#bodyReader().data(body);
    this.#writer.add(ready);
  }

  /** BDAT: the chunk's payload joins the message (the first chunk opens it). */
  startChunk(size: number, last: boolean): StepResult {
    if (this.#body !== null) return this.#bodyReader().chunk(this.#body, size, last);
    // The first chunk: the handler's beforeData() may refuse the message; its chunk is still read.
    const verdict = this.#transaction?.beforeData();
    const then = (refusal: Reply | undefined): StepResult => {
      if (refusal === undefined) return this.#firstChunk(size, last);
      this.abort();
      this.#session.transactionFailed();
      return this.skip(size, refusal);
    };
    if (!(verdict instanceof Promise)) return then(verdict);
    return this.#pump.wait(verdict, (refusal) => asPending(then(refusal)));
  }

  #firstChunk(size: number, last: boolean): StepResult {
    const body = this.#openBody(Math.max(size, this.#transaction?.envelope.declaredSize ?? 0));
    if (body === null) {
      // RFC 3030 §2: a failed BDAT fails the transaction; its chunk is still read.
      this.abort();
      this.#session.transactionFailed();
      return this.skip(size, REPLIES.insufficientStorage());
    }
    return this.#bodyReader().chunk(body, size, last);
  }

  /** A refused BDAT: its payload is read and dropped, then the reply goes out. */
  skip(size: number, reply: Reply): StepResult {
    return this.#bodyReader().skip(size, reply);
  }

  /** Opens the message body, or `null` (counted and logged) when the memory budget cannot take it. */
  #openBody(declared: number): MessageBody | null {
    const transaction = this.#transaction;
    if (transaction === null) throw new Error('data without a transaction');
    const streaming = transaction.streaming;
    if (!streaming && !this.#budget.admits(Math.min(declared, this.#settings.maxMessageSize))) {
      this.#budget.refused();
      this.#logs.log.warn(
        { reply: 'insufficientStorage', held: this.#budget.held, budget: this.#budget.limit },
        'body memory budget spent',
      );
      return null;
    }
    const body = new MessageBody(transaction.openMessage(this.#pump), this.#budget);
    this.#body = body;
    return body;
  }

  /** The message passed `maxMessageSize` while streaming (the body reader's owner: {@link BodyReaderOwner}). */
  overflow(error: Error): void {
    this.#transaction?.overflow(error);
  }

  /** The whole message is in: the handler's verdict (or the data's own refusal), then the reply ({@link BodyReaderOwner}). */
  ended(body: MessageBody, refusal: DataRefusal | undefined): Promise<void> | undefined {
    if (refusal !== undefined) return this.#refuse(refusal.reply, refusal.error);
    const transaction = this.#transaction;
    this.#transaction = null;
    this.#body = null;
    if (transaction === null) throw new Error('end of data without a transaction');
    const held = body.overBudget ? null : body.stream === null ? body.body() : EMPTY;
    if (held === null) {
      this.#budget.refused();
      this.#logs.log.warn({ reply: 'insufficientStorage', budget: this.#budget.limit }, 'body memory budget spent during the data');
      this.#metrics?.transaction('aborted');
      return this.#replies(transaction.refuseMessage(REPLIES.insufficientStorage(), new Error('memory budget spent')));
    }
    this.#delivering = transaction;
    const started = this.#metrics === null ? 0 : performance.now();
    const outcome: Maybe<MessageReplies> = transaction.message(held, body.size);
    // The body leaves the budget once data() is done with it, whether or not the client is still there.
    if (!(outcome instanceof Promise)) {
      body.release();
      return this.#delivered(outcome, body.size, started);
    }
    const release = (): void => body.release();
    void outcome.then(release, release);
    return this.#pump.wait(outcome, (replies) => this.#delivered(replies, body.size, started));
  }

  #delivered(replies: MessageReplies, size: number, started: number): undefined {
    this.#delivering = null;
    if (this.#metrics !== null) this.#counted(replies, size, started);
    return this.#replies(replies);
  }

  /** The end of a message, counted: accepted (for any recipient, under LMTP) or aborted. */
  #counted(replies: MessageReplies, size: number, started: number): void {
    this.#timed('data', started);
    const accepted = Array.isArray(replies) ? (replies as readonly Reply[]).some((r) => r.code < 400) : (replies as Reply).code < 400;
    if (accepted) this.#metrics?.accepted(size);
    this.#metrics?.transaction(accepted ? 'completed' : 'aborted');
  }

  #timed(hook: TimedHook, started: number): void {
    if (this.#metrics !== null) this.#metrics.hook(hook, (performance.now() - started) / 1000);
  }

  #refuse(reply: Reply, error: Error): undefined {
    this.#metrics?.transaction('aborted');
    const transaction = this.#transaction;
    this.#transaction = null;
    this.#body?.release();
    this.#body = null;
    if (transaction === null) throw new Error('end of data without a transaction');
    return this.#replies(transaction.refuseMessage(reply, error));
  }

  #replies(replies: MessageReplies): undefined {
    if (Array.isArray(replies)) for (const reply of replies as readonly Reply[]) this.#writer.add(reply);
    else this.#writer.add(replies as Reply);
    return undefined;
  }

  /** RSET, a new HELO/EHLO, STARTTLS, a refused chunk: the open transaction ends. */
  abort(): void {
    if (this.#transaction !== null && !this.#transaction.ended) this.#metrics?.transaction('aborted');
    this.#transaction?.abort(false);
    this.#transaction = null;
    this.#body?.release();
    this.#body = null;
  }

  /** The client went away: the open transaction, and one whose `data()` still runs, hear of it. */
  connectionClosed(): void {
    if (this.#transaction !== null && !this.#transaction.ended) this.#metrics?.transaction('aborted');
    this.#reader?.stop();
    this.#body?.release();
    this.#body = null;
    this.#transaction?.abort(true);
    this.#delivering?.abort(true);
    this.#transaction = null;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * An empty array with room for one element. Most messages have one recipient: V8 grows an empty
 * array (`[]`) to 17 slots at its first push, 152 bytes for each of the envelope's three arrays,
 * where this one takes the first recipient as it is (popping leaves its one slot in place).
 */
function roomForOne<T>(): T[] {
  const array: T[] = [undefined as T];
  array.pop();
  return array;
}
