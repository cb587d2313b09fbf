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
  /** Where the bytes held end in {@link #pending}: its length, or the length of the read a loan lent. */
  #end = 0;
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
   * The read buffer lent by {@link pushLent} until {@link endLoan}; a loan is only ever the first
   * run, known by identity (a typed array's `buffer` is a call into V8's runtime).
   */
  #lent: Buffer | null = null;

  /**
   * @param maxLength the longest line accepted, counting its CRLF.
   * @param crlfOnly a bare LF does not end a line (RFC 5321 §2.3.8 to the letter): it stays in
   *   the line, where the command parser refuses it as a control character.
   */
  constructor(maxLength: number, crlfOnly = false) {
    this.#maxLength = maxLength;
    this.#crlfOnly = crlfOnly;
  }

  /** Where the first line from `from` ends before `end` (the index of its LF), or -1. */
  #lineEnd(buf: Buffer, from: number, end: number): number {
    let lf = byteIndex(buf, Byte.LF, from);
    if (this.#crlfOnly) while (lf !== -1 && lf < end && (lf === from || buf[lf - 1] !== Byte.CR)) lf = byteIndex(buf, Byte.LF, lf + 1);
    return lf < end ? lf : -1;
  }

  /** Whether any byte held is in `backing`: memory that must not be written over yet. */
  holds(backing: ArrayBufferLike): boolean {
    return (this.#pending !== null && this.#pending.buffer === backing) || this.#rest.some((run) => run.buffer === backing);
  }

  /** Bytes held, waiting for a line end or for {@link takeNext}. */
  get buffered(): number {
    return this.#pending === null ? 0 : this.#end - this.#from + this.#restBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pending === null) {
      this.#first(chunk);
    } else {
      if (this.#rest === NO_RUNS) this.#rest = [];
      this.#rest.push(chunk);
      this.#restBytes += chunk.length;
    }
  }

  /**
   * Pushes the first `length` bytes of `read`, a read buffer only lent: it is written over once the
   * caller returns, and the caller must call {@link endLoan} before it does. No Buffer is made for
   * the read: lines are ranges of it; bytes handed over ({@link take}, {@link takeNext},
   * {@link takeAll}) are copied, and so is what is still held when the loan ends. A read whose
   * lines are all handled within the call is never copied. The byte at `length`, which is not the
   * client's, becomes a line feed: a search for the end of a line stops there.
   */
  pushLent(read: Buffer, length: number): void {
    if (length === 0) return;
    if (this.#pending !== null) {
      // Bytes from an earlier read wait for this one: the loan joins them as a copy.
      this.push(copyOf(read, 0, length));
      return;
    }
    if (length < read.length) read[length] = Byte.LF;
    this.#pending = this.#lent = read;
    this.#from = 0;
    this.#end = length;
  }

  /** The loan of {@link pushLent} ends: what is still held of it is copied into memory of its own. */
  endLoan(): void {
    const lent = this.#lent;
    if (lent === null) return;
    this.#lent = null;
    if (this.#event.bytes === lent) this.#event.bytes = NO_BYTES;
    if (this.#pending === lent) this.#first(copyOf(lent, this.#from, this.#end));
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
    this.#first(chunk);
  }

  /** The next complete line, or `undefined` until more bytes arrive. The event is valid until the next call. */
  next(): LineEvent | undefined {
    let buf = this.#pending;
    let from = this.#from;
    let end = this.#end;
    let lf = buf === null ? -1 : this.#lineEnd(buf, from, end);
    while (buf !== null && lf === -1) {
      if (end - from > this.#maxLength) {
        // Keep the last byte: it may be the CR of the CRLF that ends the long line.
        this.#discarding = true;
        from = end - 1;
      }
      const more = this.#shiftRest();
      if (more === null) {
        this.#from = from;
        return undefined;
      }
      // The line goes on in the next run: join them (no more than a line's worth, as above).
      buf = Buffer.concat([bytesOf(buf, from, end), more]);
      this.#first(buf);
      from = 0;
      end = buf.length;
      lf = this.#lineEnd(buf, 0, end);
    }
    if (buf === null) return undefined;
    if (lf + 1 === end) this.#first(this.#shiftRest());
    else this.#from = lf + 1;
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
   * of its own when it is a small part of a larger buffer (or of a loan), so that a few bytes
   * waiting on an idle connection never keep a whole read buffer (or a shared pool slab) alive;
   * and the event of the last line handed out, which nothing reads any more, lets go of the read
   * it lay in.
   */
  compact(): void {
    this.#event.bytes = NO_BYTES;
    const p = this.#pending;
    if (p === null) return;
    const length = this.#end - this.#from;
    if (p !== this.#lent && length * 2 >= p.buffer.byteLength) return;
    const own = Buffer.allocUnsafeSlow(length);
    p.copy(own, 0, this.#from, this.#end);
    this.#first(own);
  }

  /** Hands over at most `max` bytes of the first run held (a BDAT chunk's payload), or `null`. */
  take(max: number): Buffer | null {
    const buf = this.#pending;
    if (buf === null || max <= 0) return null;
    const from = this.#from;
    if (this.#end - from <= max) return this.takeNext();
    this.#from = from + max;
    return buf === this.#lent ? copyOf(buf, from, from + max) : bytesOf(buf, from, from + max);
  }

  /** Hands over the first run held, as it came (for the DATA decoder), or `null`. */
  takeNext(): Buffer | null {
    const buf = this.#held();
    this.#first(this.#shiftRest());
    return buf;
  }

  /** Hands over everything held, joined (what is dropped after STARTTLS), or `null`. */
  takeAll(): Buffer | null {
    const buf = this.#held();
    if (buf === null || this.#rest.length === 0) {
      this.#first(null);
      return buf;
    }
    const all = Buffer.concat([buf, ...this.#rest]);
    this.#first(null);
    this.#rest = NO_RUNS;
    this.#restBytes = 0;
    return all;
  }

  /** What is held of the first run (a view when lines were taken from it, a copy of a loan), or `null`. */
  #held(): Buffer | null {
    const buf = this.#pending;
    if (buf === null) return null;
    if (buf === this.#lent) return copyOf(buf, this.#from, this.#end);
    return this.#from === 0 ? buf : bytesOf(buf, this.#from, this.#end);
  }

  /** Makes `run` the first run held, whole. */
  #first(run: Buffer | null): void {
    this.#pending = run;
    this.#from = 0;
    this.#end = run === null ? 0 : run.length;
  }

  #shiftRest(): Buffer | null {
    const run = this.#rest.shift();
    if (run === undefined) return null;
    this.#restBytes -= run.length;
    return run;
  }
}

/** Bytes `start` to `end` of `buf`, copied into a Buffer of their own (from Node's pool when small). */
function copyOf(buf: Buffer, start: number, end: number): Buffer {
  const own = Buffer.allocUnsafe(end - start);
  buf.copy(own, 0, start, end);
  return own;
}
