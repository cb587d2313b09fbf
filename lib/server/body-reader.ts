/**
 * The message's bytes on their way in: what the connection reads instead of command lines while
 * a message comes. DATA goes through the {@link DataDecoder} up to the final dot, a BDAT chunk is
 * taken as it is, a refused chunk is read and dropped; each run goes into the {@link MessageBody}
 * the intake opened. A streaming handler sets the pace: when its stream is full, the reader waits
 * for its demand (and the pump stops reading the socket).
 *
 * The reader knows nothing of the transaction: it tells the intake when the message is whole
 * (`ended`, with the refusal the data itself earned: too big, bare line ends), when it passed
 * `maxMessageSize` while streaming (`overflow`), and sends the replies of the byte layer itself
 * (`250 2.0.0` per BDAT chunk, a skipped chunk's refusal).
 */
import { MessageTooBigError } from '../app/message-stream.js';
import type { ApplicationSettings } from '../app/settings.js';
import { DataDecoder } from '../protocol/data-decoder.js';
import type { LineSplitter } from '../protocol/line-splitter.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';
import type { Session } from '../protocol/session.js';
import { asPending, DRY, type InputPump, type StepResult } from '../net/input-pump.js';
import type { MessageBody } from './message-body.js';
import type { ReplyWriter } from './reply-writer.js';

/** What is being read now instead of command lines. */
const enum Reading {
  Commands,
  /** DATA, up to the final dot. */
  Data,
  /** A BDAT chunk's payload. */
  Chunk,
  /** A refused BDAT chunk's payload, dropped. */
  Skip,
}

/** The data refused the message by itself: the reply, and the error a streaming handler's stream fails with. */
export interface DataRefusal {
  readonly reply: Reply;
  readonly error: Error;
}

/** What the reader tells the intake. */
export interface BodyReaderOwner {
  /** The whole message is in (DATA's final dot, or BDAT LAST), or the data refused it. */
  ended(body: MessageBody, refusal: DataRefusal | undefined): Promise<void> | undefined;
  /** The message passed `maxMessageSize` while it streams: the handler's stream fails now. */
  overflow(error: Error): void;
}

export class BodyReader {
  readonly #settings: ApplicationSettings;
  readonly #session: Session;
  readonly #writer: ReplyWriter;
  readonly #pump: InputPump;
  readonly #owner: BodyReaderOwner;
  #reading = Reading.Commands;
  #decoder: DataDecoder | null = null;
  #body: MessageBody | null = null;
  /** Bytes of the BDAT chunk (or skipped payload) still to read. */
  #left = 0;
  #last = false;
  #chunkSize = 0;
  /** The reply after a skipped payload. */
  #skipReply: Reply | null = null;

  constructor(settings: ApplicationSettings, session: Session, writer: ReplyWriter, pump: InputPump, owner: BodyReaderOwner) {
    this.#settings = settings;
    this.#session = session;
    this.#writer = writer;
    this.#pump = pump;
    this.#owner = owner;
  }

  /** Whether message bytes are being read: input goes to {@link take}, not the line parser. */
  get reading(): boolean {
    return this.#reading !== Reading.Commands;
  }

  /** DATA was answered 354: lines are message data up to the final dot. */
  data(body: MessageBody): void {
    this.#decoder = new DataDecoder(this.#settings.maxMessageSize, this.#settings.bareLineEndings, body);
    this.#body = body;
    this.#reading = Reading.Data;
  }

  /** A BDAT chunk of `size` bytes joins `body`. */
  chunk(body: MessageBody, size: number, last: boolean): StepResult {
    this.#body = body;
    this.#reading = Reading.Chunk;
    this.#left = size;
    this.#last = last;
    this.#chunkSize = size;
    return size === 0 ? this.#chunkEnd(body) : undefined;
  }

  /** A refused BDAT: its payload is read and dropped, then `reply` goes out. */
  skip(size: number, reply: Reply): StepResult {
    this.#reading = Reading.Skip;
    this.#left = size;
    this.#skipReply = reply;
    return size === 0 ? this.#skipEnd() : undefined;
  }

  /** Stops reading message bytes (the client left). */
  stop(): void {
    this.#reading = Reading.Commands;
    this.#decoder = null;
    this.#body = null;
  }

  /** Feeds what the client sent to the message; at its end, the owner hears of it. */
  take(lines: LineSplitter): StepResult {
    if (this.#reading === Reading.Data) return this.#takeDataLines(lines);
    const part = lines.take(this.#left);
    if (part === null) return DRY;
    this.#left -= part.length;
    if (this.#reading === Reading.Skip) return this.#left === 0 ? this.#skipEnd() : undefined;
    const body = this.#body;
    if (body === null) throw new Error('a BDAT chunk without a message');
    body.write(part);
    const next = (): StepResult => (this.#left === 0 ? this.#chunkEnd(body) : undefined);
    return body.takeBackedUp() ? this.#afterDemand(body, next) : next();
  }

  #takeDataLines(lines: LineSplitter): StepResult {
    const decoder = this.#decoder;
    const body = this.#body;
    if (decoder === null || body === null) throw new Error('no data is being read');
    const chunk = lines.takeNext();
    if (chunk === null) return DRY;
    const wasTooBig = decoder.tooBig;
    const rest = decoder.push(chunk);
    if (decoder.tooBig && !wasTooBig) this.#owner.overflow(new MessageTooBigError(this.#settings.maxMessageSize));
    if (rest !== undefined) {
      lines.unshift(rest);
      return this.#dataEnd(decoder, body);
    }
    return body.takeBackedUp() ? this.#afterDemand(body, () => undefined) : undefined;
  }

  /** Waits until the streaming handler wants more, with the idle clock stopped meanwhile. */
  #afterDemand(body: MessageBody, then: () => StepResult): Promise<void> | undefined {
    const stream = body.stream;
    if (stream === null) return asPending(then());
    return this.#pump.wait(stream.demand(), () => asPending(then()), false);
  }

  #dataEnd(decoder: DataDecoder, body: MessageBody): Promise<void> | undefined {
    this.stop();
    this.#session.dataEnded();
    const message = decoder.result();
    if (message.tooBig) {
      return this.#owner.ended(body, { reply: REPLIES.messageTooBig(), error: new MessageTooBigError(this.#settings.maxMessageSize) });
    }
    if (message.bareLineEndings && this.#settings.bareLineEndings === 'reject') {
      return this.#owner.ended(body, { reply: REPLIES.bareLineEndingsInBody(), error: new Error('bare CR or LF in the message') });
    }
    return this.#owner.ended(body, undefined);
  }

  #chunkEnd(body: MessageBody): StepResult {
    this.#reading = Reading.Commands;
    this.#body = null;
    this.#session.chunkEnded(this.#last);
    if (this.#last) return this.#owner.ended(body, undefined);
    this.#writer.add(REPLIES.chunkReceived(this.#chunkSize));
    return undefined;
  }

  #skipEnd(): undefined {
    this.#reading = Reading.Commands;
    const reply = this.#skipReply;
    this.#skipReply = null;
    if (reply !== null) this.#writer.add(reply);
    return undefined;
  }
}
