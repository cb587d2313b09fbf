/**
 * The message as a stream: what a streaming handler reads in `data()` while the client is still
 * sending. The server feeds it the decoded body (dot-stuffing removed for DATA, the chunks as
 * they are for BDAT); when the handler reads slower than the client sends, the server stops
 * reading the socket, so the client waits and no buffer grows.
 *
 * It ends cleanly only when the whole message arrived within `maxMessageSize`. Otherwise it is
 * destroyed with an error a handler can tell apart: {@link MessageTooBigError} past the size
 * limit, {@link MessageAbortedError} when the client went away or reset the transaction.
 */
import { Readable } from 'node:stream';
import { LentChunks, type ReadBufferRecycler } from './lent-chunks.js';
import type { HeadGate } from './head-gate.js';

/**
 * The message passed `maxMessageSize`; the client is answered `552 5.3.4` once it has sent it all.
 *
 * @example
 * ```ts
 * try { await pipeline(this.request.stream, out); }
 * catch (err) { if (err instanceof MessageTooBigError) this.log.info(`over ${err.limit} bytes`); throw err; }
 * ```
 */
export class MessageTooBigError extends Error {
  /** Stable, for code that cannot use `instanceof`. */
  readonly code = 'ERR_SIROCCO_MESSAGE_TOO_BIG';
  /** @param limit the `maxMessageSize` that was passed, in bytes */
  constructor(readonly limit: number) {
    super(`message exceeds maxMessageSize (${limit} bytes)`);
    this.name = 'MessageTooBigError';
  }
}

/**
 * The message will not be completed: the client closed the connection, or RSET/EHLO/an error
 * ended the transaction. Never take what was read so far for the whole message.
 *
 * @example
 * ```ts
 * this.request.stream.on('error', (err) => { if (err instanceof MessageAbortedError) void unlink(partialFile); });
 * ```
 */
export class MessageAbortedError extends Error {
  /** Stable, for code that cannot use `instanceof`. */
  readonly code = 'ERR_SIROCCO_MESSAGE_ABORTED';
  constructor(reason: string) {
    super(`message aborted: ${reason}`);
    this.name = 'MessageAbortedError';
  }
}

/** Bytes held by the stream before the server stops reading the client. */
const HIGH_WATER_MARK = 64 * 1024;

/**
 * The Readable a streaming handler reads as `this.request.stream`: the decoded body while it
 * arrives. Its methods marked internal are the server's; read it as any Readable.
 *
 * @example
 * ```ts
 * class Count extends RequestHandler {
 *   static override streaming = true;
 *   override async data() { let n = 0; for await (const part of this.request.stream) n += part.length; this.log.info({ n }); }
 * }
 * ```
 */
export class MessageStream extends Readable {
  #wanted: (() => void) | null = null;
  #discarding = false;
  #done = false;
  #lending: LentChunks | null = null;
  #tap: ((part: Buffer | Error | null) => boolean) | null = null;
  /** Resolves once the tap has caught up, after it said it was behind. */
  #tapCaughtUp: (() => Promise<void>) | null = null;
  #tapBehind = false;
  #readerBehind = false;
  #gate: HeadGate | null = null;
  readonly #recycler: ReadBufferRecycler | null;

  /** @internal */
  constructor(recycler: ReadBufferRecycler | null = null) {
    super({ highWaterMark: HIGH_WATER_MARK });
    this.#recycler = recycler;
    // A handler that stopped reading must not bring the process down when the message then fails:
    // readers that still listen (pipeline, for await, their own 'error' listener) get the error.
    this.on('error', () => undefined);
  }

  /** Node's Readable asks for more: the server may feed the next part. */
  override _read(): void {
    const wanted = this.#wanted;
    this.#wanted = null;
    wanted?.();
  }

  /**
   * @internal Feeds a run of the body. Returns `false` when the reader is behind: the server then
   * waits for {@link demand} before it feeds more.
   */
  feed(part: Buffer): boolean {
    // The tap sees every byte, also those a handler that stopped reading will not; when it falls
    // behind, the server waits for it as for a slow reader.
    if (this.#tap !== null && !this.#tap(part)) this.#tapBehind = true;
    if (!this.#feedReader(part)) this.#readerBehind = true;
    return !this.#readerBehind && !this.#tapBehind;
  }

  #feedReader(part: Buffer): boolean {
    if (this.#done || this.destroyed || this.#discarding) return true;
    const gate = this.#gate;
    if (gate === null) return this.#forward(part);
    let more = true;
    for (const passed of gate.pass(part)) more = this.#forward(passed);
    return more;
  }

  #forward(part: Buffer): boolean {
    if (this.#lending !== null) return this.#lending.feed(part);
    return this.push(part);
  }

  /**
   * @internal Mail authentication's view of the message: `tap` is given each part as it arrives
   * (valid until it returns), then `null` at the end or the error that ended it, and answers
   * `false` when it is behind: no more is fed until `caughtUp()` resolves. `gate`, when given,
   * holds the header section back and filters it before the reader sees it.
   */
  inspect(tap: (part: Buffer | Error | null) => boolean, caughtUp: () => Promise<void>, gate: HeadGate | null): void {
    this.#tap = tap;
    this.#tapCaughtUp = caughtUp;
    this.#gate = gate;
  }

  /**
   * @internal The message as lent chunks (`this.request.lentChunks()`), instead of this stream.
   * What the stream holds already moves over, and its memory is never reused.
   */
  lend(): LentChunks {
    if (this.#lending !== null) throw new Error('lentChunks() was called already for this message');
    if (this.readableDidRead || this.readableFlowing !== null) {
      throw new Error('the message is read as this.request.stream already: read it either as the stream or through lentChunks()');
    }
    const lending = new LentChunks(this.#recycler, () => this.#release());
    this.#lending = lending;
    if (this.destroyed) {
      lending.fail(this.errored ?? new MessageAbortedError('the message ended before it was read'));
      return lending;
    }
    for (let part = this.read() as Buffer | null; part !== null; part = this.read() as Buffer | null) lending.feed(part, true);
    if (this.#discarding) lending.drop();
    else if (this.#done) lending.end();
    return lending;
  }

  /** @internal Resolves once the reader wants more (or nobody reads any more) and the tap has caught up. */
  demand(): Promise<void> {
    const tap = this.#tapBehind ? this.#tapCaughtUp?.() : undefined;
    this.#tapBehind = false;
    const reader = this.#readerBehind ? this.#readerDemand() : undefined;
    this.#readerBehind = false;
    if (tap === undefined) return reader ?? Promise.resolve();
    return reader === undefined ? tap : Promise.all([reader, tap]).then(() => undefined);
  }

  #readerDemand(): Promise<void> {
    if (this.#done || this.destroyed || this.#discarding || this.#lending?.dropping === true) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wanted = resolve;
    });
  }

  /**
   * @internal The handler's `data()` settled before the message ended: what is left is read from
   * the client and dropped, so the transaction can finish.
   */
  discard(): void {
    this.#discarding = true;
    this.#lending?.drop();
    this.#release();
  }

  /** @internal The whole message arrived. */
  complete(): void {
    this.#tap?.(null);
    if (this.#done || this.destroyed) return;
    if (this.#gate !== null && !this.#discarding) for (const rest of this.#gate.end()) this.#forward(rest);
    this.#done = true;
    this.push(null);
    this.#lending?.end();
    this.#release();
  }

  /** @internal The message will not be completed: the reader gets `error`. */
  fail(error: Error): void {
    this.#tap?.(error);
    if (this.#done || this.destroyed) return;
    this.#done = true;
    this.destroy(error);
    this.#lending?.fail(error);
    this.#release();
  }

  #release(): void {
    const wanted = this.#wanted;
    this.#wanted = null;
    wanted?.();
  }
}
