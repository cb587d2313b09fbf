/**
 * Splits the command stream into lines with a hard byte limit. Pure: bytes in, lines out.
 *
 * Memory is bounded by the limit: a line that grows past it is discarded as it arrives and
 * reported once, as `tooLong`, when its line feed finally comes, so the connection stays usable
 * (RFC 5321 §4.5.3.1.4 allows the server to refuse an over-long line with 500).
 */

import { byteIndex, bytesOf } from './byte-index.js';

const LF = 0x0a;
const CR = 0x0d;
/** No runs held: one empty list shared by every splitter until it holds one (never written to). */
const NO_RUNS: Buffer[] = [];

/** One unit of the command stream. */
export type LineEvent = { readonly kind: 'line'; readonly line: Buffer; readonly bareLineFeed: boolean } | { readonly kind: 'tooLong' };

export class LineSplitter {
  readonly #maxLength: number;
  readonly #crlfOnly: boolean;
  /** The first run of bytes held; `null` when nothing is. */
  #pending: Buffer | null = null;
  /**
   * Runs pushed after it, kept as they came: joined to it only when a line is looked for across
   * them, so bytes waiting for a hook or a slow reader are never copied (and a read buffer stays
   * whole, for a lending reader to give back).
   */
  #rest: Buffer[] = NO_RUNS;
  #restBytes = 0;
  #discarding = false;

  /**
   * @param maxLength the longest line accepted, counting its CRLF.
   * @param crlfOnly a bare LF does not end a line (RFC 5321 §2.3.8 to the letter): it stays in
   *   the line, where the command parser refuses it as a control character.
   */
  constructor(maxLength: number, crlfOnly = false) {
    this.#maxLength = maxLength;
    this.#crlfOnly = crlfOnly;
  }

  /** Where the first line ends (the index of its LF), or -1. */
  #lineEnd(buf: Buffer): number {
    let lf = byteIndex(buf, LF);
    if (!this.#crlfOnly) return lf;
    while (lf !== -1 && (lf === 0 || buf[lf - 1] !== CR)) lf = byteIndex(buf, LF, lf + 1);
    return lf;
  }

  /** Whether any byte held is in `backing`: memory that must not be written over yet. */
  holds(backing: ArrayBufferLike): boolean {
    return (this.#pending !== null && this.#pending.buffer === backing) || this.#rest.some((run) => run.buffer === backing);
  }

  /** Bytes held, waiting for a line end or for {@link takeNext}. */
  get buffered(): number {
    return this.#pending === null ? 0 : this.#pending.length + this.#restBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pending === null) {
      this.#pending = chunk;
    } else {
      if (this.#rest === NO_RUNS) this.#rest = [];
      this.#rest.push(chunk);
      this.#restBytes += chunk.length;
    }
  }

  /** Puts bytes back in front of what is held (the rest of a chunk after the end of DATA). */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pending !== null) {
      if (this.#rest === NO_RUNS) this.#rest = [];
      this.#rest.unshift(this.#pending);
      this.#restBytes += this.#pending.length;
    }
    this.#pending = chunk;
  }

  /** The next complete line, or `undefined` until more bytes arrive. */
  next(): LineEvent | undefined {
    let buf = this.#pending;
    let lf = buf === null ? -1 : this.#lineEnd(buf);
    while (buf !== null && lf === -1) {
      if (buf.length > this.#maxLength) {
        // Keep the last byte: it may be the CR of the CRLF that ends the long line.
        this.#discarding = true;
        buf = buf.subarray(buf.length - 1);
      }
      const more = this.#shiftRest();
      if (more === null) {
        this.#pending = buf;
        return undefined;
      }
      // The line goes on in the next run: join them (no more than a line's worth, as above).
      buf = Buffer.concat([buf, more]);
      lf = this.#lineEnd(buf);
    }
    if (buf === null) return undefined;
    this.#pending = lf + 1 === buf.length ? this.#shiftRest() : bytesOf(buf, lf + 1, buf.length);
    if (this.#discarding || lf + 1 > this.#maxLength) {
      this.#discarding = false;
      return { kind: 'tooLong' };
    }
    const bareLineFeed = lf === 0 || buf[lf - 1] !== CR;
    return { kind: 'line', line: bytesOf(buf, 0, bareLineFeed ? lf : lf - 1), bareLineFeed };
  }

  /**
   * Called when the input ran dry: a partial line held until more bytes come is copied into memory
   * of its own when it is a small view of a larger buffer, so that a few bytes waiting on an idle
   * connection never keep a whole read buffer (or a shared pool slab) alive.
   */
  compact(): void {
    const p = this.#pending;
    if (p === null || p.byteLength * 2 >= p.buffer.byteLength) return;
    const own = Buffer.allocUnsafeSlow(p.byteLength);
    p.copy(own);
    this.#pending = own;
  }

  /** Hands over at most `max` bytes of the first run held (a BDAT chunk's payload), or `null`. */
  take(max: number): Buffer | null {
    const buf = this.#pending;
    if (buf === null || max <= 0) return null;
    if (buf.length <= max) {
      this.#pending = this.#shiftRest();
      return buf;
    }
    this.#pending = buf.subarray(max);
    return buf.subarray(0, max);
  }

  /** Hands over the first run held, as it came (for the DATA decoder), or `null`. */
  takeNext(): Buffer | null {
    const buf = this.#pending;
    this.#pending = this.#shiftRest();
    return buf;
  }

  /** Hands over everything held, joined (what is dropped after STARTTLS), or `null`. */
  takeAll(): Buffer | null {
    const buf = this.#pending;
    if (buf === null || this.#rest.length === 0) {
      this.#pending = null;
      return buf;
    }
    const all = Buffer.concat([buf, ...this.#rest]);
    this.#pending = null;
    this.#rest = NO_RUNS;
    this.#restBytes = 0;
    return all;
  }

  #shiftRest(): Buffer | null {
    const run = this.#rest.shift();
    if (run === undefined) return null;
    this.#restBytes -= run.length;
    return run;
  }
}
