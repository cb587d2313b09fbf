/**
 * The message as lent chunks: what `this.request.lentChunks()` gives a streaming handler. Each
 * chunk is valid until the reader asks for the next one; then the server may read the next bytes
 * from the client into the same memory. A reader that keeps nothing (a counter, a hash, a file
 * written chunk by chunk) then costs the process no memory per read: a message of any size reads
 * through the same few buffers instead of leaving one behind per read until the next garbage
 * collection.
 *
 * Memory is reused only when the server knows nothing else holds it: a read buffer of the
 * socket's own (plain TCP or Unix sockets, read directly), every part of which the reader has
 * given back and no input waiting to be parsed is in. Anything else (TLS, parts the stream held
 * before lending began, the last reads of a message) is simply left to the garbage collector.
 */

/** @internal What the server offers a lending reader: its read buffers, to be given back. */
export interface ReadBufferRecycler {
  /** Whether `backing` is a read buffer the server may read into again once it is given back. */
  owns(backing: ArrayBufferLike): boolean;
  /** Nothing lent from `backing` is held any more. */
  recycle(backing: ArrayBufferLike): void;
}

/** Bytes waiting for the reader before the server stops reading the client (as the stream's). */
const HIGH_WATER_MARK = 64 * 1024;

type Waiting = { resolve: (result: IteratorResult<Buffer>) => void; reject: (err: unknown) => void };

const DONE: IteratorResult<Buffer> = { value: undefined, done: true };

/**
 * The iterator `this.request.lentChunks()` returns. Read it with `for await`; each chunk is lent
 * until the loop asks for the next one (copy what you keep). It ends once the whole message has
 * arrived, or throws the error a stream would (`MessageTooBigError`, `MessageAbortedError`).
 *
 * @example
 * ```ts
 * class Digest extends RequestHandler {
 *   static override streaming = true;
 *   override async data() {
 *     const hash = createHash('sha256');
 *     for await (const chunk of this.request.lentChunks()) hash.update(chunk);
 *     this.log.info({ sha256: hash.digest('hex') });
 *   }
 * }
 * ```
 */
export class LentChunks implements AsyncIterableIterator<Buffer> {
  #queue: Buffer[] = [];
  #head = 0;
  #queued = 0;
  /** The chunk the reader holds. */
  #lent: Buffer | null = null;
  /** Parts lent or queued per read buffer; `null` once nothing more is given back. */
  #loans: Map<ArrayBufferLike, number> | null = new Map();
  /** Read buffers never given back: parts of them came before lending began. */
  readonly #pinned = new Set<ArrayBufferLike>();
  #recycler: ReadBufferRecycler | null;
  #ended = false;
  #dropping = false;
  #error: Error | null = null;
  #waiting: Waiting | null = null;
  readonly #space: () => void;

  /** @internal */
  constructor(recycler: ReadBufferRecycler | null, space: () => void) {
    this.#recycler = recycler;
    this.#space = space;
  }

  /** @internal Whether the reader stopped: what comes is dropped, and the server need not wait. */
  get dropping(): boolean {
    return this.#dropping;
  }

  /**
   * @internal Queues a part of the body for the reader. `pinned`: its memory is never given back.
   * Returns `false` when the reader is behind: the server then waits before it feeds more.
   */
  feed(part: Buffer, pinned = false): boolean {
    if (this.#ended || this.#dropping) return true;
    const backing = part.buffer;
    const loans = this.#loans;
    if (pinned) {
      this.#pinned.add(backing);
      loans?.delete(backing);
    } else if (loans !== null && !this.#pinned.has(backing) && this.#recycler?.owns(backing) === true) {
      loans.set(backing, (loans.get(backing) ?? 0) + 1);
    }
    const waiting = this.#waiting;
    if (waiting !== null) {
      this.#waiting = null;
      this.#lent = part;
      waiting.resolve({ value: part, done: false });
      return true;
    }
    this.#queue.push(part);
    this.#queued += part.length;
    return this.#queued < HIGH_WATER_MARK;
  }

  /** @internal The whole message arrived. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopLending();
    this.#wake();
  }

  /** @internal The message will not be completed: the reader gets `error`. */
  fail(error: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#drain();
    this.#wake();
  }

  /** @internal Nobody reads any more: the rest is dropped. */
  drop(): void {
    this.#dropping = true;
    this.#drain();
    this.#wake();
  }

  /** The next chunk; the one before it is given back. */
  next(): Promise<IteratorResult<Buffer>> {
    this.#giveBackLent();
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#head < this.#queue.length) {
      const part = this.#shift();
      this.#lent = part;
      this.#space();
      return Promise.resolve({ value: part, done: false });
    }
    if (this.#ended || this.#dropping) return Promise.resolve(DONE);
    this.#space();
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  /** The reader stopped early (`break` out of `for await`): the rest of the message is dropped. */
  return(): Promise<IteratorResult<Buffer>> {
    this.#giveBackLent();
    this.drop();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): LentChunks {
    return this;
  }

  #shift(): Buffer {
    const part = this.#queue[this.#head] as Buffer;
    this.#head++;
    this.#queued -= part.length;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    return part;
  }

  #giveBackLent(): void {
    const part = this.#lent;
    if (part === null) return;
    this.#lent = null;
    const loans = this.#loans;
    if (loans === null) return;
    const backing = part.buffer;
    const count = loans.get(backing);
    if (count === undefined) return;
    if (count > 1) {
      loans.set(backing, count - 1);
    } else {
      loans.delete(backing);
      this.#recycler?.recycle(backing);
    }
  }

  /** Nothing is given back from now on: the message's last reads may share memory with what follows it. */
  #stopLending(): void {
    this.#loans = null;
    this.#recycler = null;
  }

  #drain(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
    this.#stopLending();
  }

  #wake(): void {
    const waiting = this.#waiting;
    if (waiting === null || this.#head < this.#queue.length) return;
    this.#waiting = null;
    if (this.#error !== null) waiting.reject(this.#error);
    else waiting.resolve(DONE);
  }
}
