/**
 * Splits the command stream into lines with a hard byte limit. Pure: bytes in, lines out.
 *
 * Memory is bounded by the limit: a line that grows past it is discarded as it arrives and
 * reported once, as `tooLong`, when its line feed finally comes, so the connection stays usable
 * (RFC 5321 §4.5.3.1.4 allows the server to refuse an over-long line with 500).
 */

import { Byte, byteIndex, bytesOf } from './byte-index.js';

/** No runs held: one empty list shared by every splitter until it holds one (never written to). */
const NO_RUNS: Buffer[] = [];
const NO_BYTES = Buffer.alloc(0);

/**
 * One unit of the command stream: a line, as a range of the bytes read (no Buffer is made for
 * it), or `tooLong`. The splitter hands out the same object each time: it is valid until the
 * splitter is next asked for a line.
 */
export class LineEvent {
  kind: 'line' | 'tooLong' = 'line';
  /** The bytes the line lies in, from {@link start} to {@link end} (its CRLF or LF left out). */
  bytes: Buffer = NO_BYTES;
  start = 0;
  end = 0;
  /** Whether the line ended in a bare LF. */
  bareLineFeed = false;

  /** A line from `start` to `end` of `bytes` (for tests and callers that have a line of their own). */
  static of(bytes: Buffer, start = 0, end = bytes.length, bareLineFeed = false): LineEvent {
    const event = new LineEvent();
    Object.assign(event, { bytes, start, end, bareLineFeed });
    return event;
  }

  /** A line longer than the limit. */
  static tooLong(): LineEvent {
    const event = new LineEvent();
    event.kind = 'tooLong';
    return event;
  }

  /** The line as a Buffer (a view of {@link bytes}), made when asked for. */
  get line(): Buffer {
    return bytesOf(this.bytes, this.start, this.end);
  }

  /** The line's length in bytes, its line end left out. */
  get length(): number {
    return this.end - this.start;
  }
}

export class LineSplitter {
  readonly #maxLength: number;
  readonly #crlfOnly: boolean;
  /** The first run of bytes held; `null` when nothing is. */
  #pending: Buffer | null = null;
  /** Where the bytes not yet handed out begin in {@link #pending}: lines are ranges of it, not views. */
  #from = 0;
  /**
   * Runs pushed after it, kept as they came: joined to it only when a line is looked for across
   * them, so bytes waiting for a hook or a slow reader are never copied (and a read buffer stays
   * whole, for a lending reader to give back).
   */
  #rest: Buffer[] = NO_RUNS;
  #restBytes = 0;
  #discarding = false;
  readonly #event = new LineEvent();

  /**
   * @param maxLength the longest line accepted, counting its CRLF.
   * @param crlfOnly a bare LF does not end a line (RFC 5321 §2.3.8 to the letter): it stays in
   *   the line, where the command parser refuses it as a control character.
   */
  constructor(maxLength: number, crlfOnly = false) {
    this.#maxLength = maxLength;
    this.#crlfOnly = crlfOnly;
  }

  /** Where the first line from `from` ends (the index of its LF), or -1. */
  #lineEnd(buf: Buffer, from: number): number {
    let lf = byteIndex(buf, Byte.LF, from);
    if (!this.#crlfOnly) return lf;
    while (lf !== -1 && (lf === from || buf[lf - 1] !== Byte.CR)) lf = byteIndex(buf, Byte.LF, lf + 1);
    return lf;
  }

  /** Whether any byte held is in `backing`: memory that must not be written over yet. */
  holds(backing: ArrayBufferLike): boolean {
    return (this.#pending !== null && this.#pending.buffer === backing) || this.#rest.some((run) => run.buffer === backing);
  }

  /** Bytes held, waiting for a line end or for {@link takeNext}. */
  get buffered(): number {
    return this.#pending === null ? 0 : this.#pending.length - this.#from + this.#restBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pending === null) {
      this.#pending = chunk;
      this.#from = 0;
    } else {
      if (this.#rest === NO_RUNS) this.#rest = [];
      this.#rest.push(chunk);
      this.#restBytes += chunk.length;
    }
  }

  /** Puts bytes back in front of what is held (the rest of a chunk after the end of DATA). */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const held = this.#held();
    if (held !== null) {
      if (this.#rest === NO_RUNS) this.#rest = [];
      this.#rest.unshift(held);
      this.#restBytes += held.length;
    }
    this.#pending = chunk;
    this.#from = 0;
  }

  /** The next complete line, or `undefined` until more bytes arrive. The event is valid until the next call. */
  next(): LineEvent | undefined {
    let buf = this.#pending;
    let from = this.#from;
    let lf = buf === null ? -1 : this.#lineEnd(buf, from);
    while (buf !== null && lf === -1) {
      if (buf.length - from > this.#maxLength) {
        // Keep the last byte: it may be the CR of the CRLF that ends the long line.
        this.#discarding = true;
        from = buf.length - 1;
      }
      const more = this.#shiftRest();
      if (more === null) {
        this.#pending = buf;
        this.#from = from;
        return undefined;
      }
      // The line goes on in the next run: join them (no more than a line's worth, as above).
      buf = Buffer.concat([bytesOf(buf, from, buf.length), more]);
      from = 0;
      lf = this.#lineEnd(buf, 0);
    }
    if (buf === null) return undefined;
    if (lf + 1 === buf.length) {
      this.#pending = this.#shiftRest();
      this.#from = 0;
    } else {
      this.#pending = buf;
      this.#from = lf + 1;
    }
    const event = this.#event;
    if (this.#discarding || lf + 1 - from > this.#maxLength) {
      this.#discarding = false;
      event.kind = 'tooLong';
      event.bytes = NO_BYTES;
      event.start = event.end = 0;
      event.bareLineFeed = false;
      return event;
    }
    const bareLineFeed = lf === from || buf[lf - 1] !== Byte.CR;
    event.kind = 'line';
    event.bytes = buf;
    event.start = from;
    event.end = bareLineFeed ? lf : lf - 1;
    event.bareLineFeed = bareLineFeed;
    return event;
  }

  /**
   * Called when the input ran dry: a partial line held until more bytes come is copied into memory
   * of its own when it is a small part of a larger buffer, so that a few bytes waiting on an idle
   * connection never keep a whole read buffer (or a shared pool slab) alive; and the event of the
   * last line handed out, which nothing reads any more, lets go of the read it lay in.
   */
  compact(): void {
    this.#event.bytes = NO_BYTES;
    const p = this.#pending;
    if (p === null) return;
    const length = p.length - this.#from;
    if (length * 2 >= p.buffer.byteLength) return;
    const own = Buffer.allocUnsafeSlow(length);
    p.copy(own, 0, this.#from);
    this.#pending = own;
    this.#from = 0;
  }

  /** Hands over at most `max` bytes of the first run held (a BDAT chunk's payload), or `null`. */
  take(max: number): Buffer | null {
    const buf = this.#pending;
    if (buf === null || max <= 0) return null;
    const from = this.#from;
    if (buf.length - from <= max) return this.takeNext();
    this.#from = from + max;
    return bytesOf(buf, from, from + max);
  }

  /** Hands over the first run held, as it came (for the DATA decoder), or `null`. */
  takeNext(): Buffer | null {
    const buf = this.#held();
    this.#pending = this.#shiftRest();
    this.#from = 0;
    return buf;
  }

  /** Hands over everything held, joined (what is dropped after STARTTLS), or `null`. */
  takeAll(): Buffer | null {
    const buf = this.#held();
    if (buf === null || this.#rest.length === 0) {
      this.#pending = null;
      this.#from = 0;
      return buf;
    }
    const all = Buffer.concat([buf, ...this.#rest]);
    this.#pending = null;
    this.#from = 0;
    this.#rest = NO_RUNS;
    this.#restBytes = 0;
    return all;
  }

  /** What is held of the first run (a view when lines were taken from it), or `null`. */
  #held(): Buffer | null {
    const buf = this.#pending;
    if (buf === null || this.#from === 0) return buf;
    return bytesOf(buf, this.#from, buf.length);
  }

  #shiftRest(): Buffer | null {
    const run = this.#rest.shift();
    if (run === undefined) return null;
    this.#restBytes -= run.length;
    return run;
  }
}
