/**
 * Splits the command stream into lines with a hard byte limit. Pure: bytes in, lines out.
 *
 * Memory is bounded by the limit: a line that grows past it is discarded as it arrives and
 * reported once, as `tooLong`, when its line feed finally comes, so the connection stays usable
 * (RFC 5321 §4.5.3.1.4 allows the server to refuse an over-long line with 500).
 */

const LF = 0x0a;
const CR = 0x0d;

/** One unit of the command stream. */
export type LineEvent = { readonly kind: 'line'; readonly line: Buffer; readonly bareLineFeed: boolean } | { readonly kind: 'tooLong' };

export class LineSplitter {
  readonly #maxLength: number;
  readonly #crlfOnly: boolean;
  #pending: Buffer | null = null;
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
    let lf = buf.indexOf(LF);
    if (!this.#crlfOnly) return lf;
    while (lf !== -1 && (lf === 0 || buf[lf - 1] !== CR)) lf = buf.indexOf(LF, lf + 1);
    return lf;
  }

  /** Whether any byte held is in `backing`: memory that must not be written over yet. */
  holds(backing: ArrayBufferLike): boolean {
    return this.#pending !== null && this.#pending.buffer === backing;
  }

  /** Bytes held, waiting for a line end or for {@link takeAll}. */
  get buffered(): number {
    return this.#pending === null ? 0 : this.#pending.length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#pending = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
  }

  /** Puts bytes back in front of what is held (the rest of a chunk after the end of DATA). */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#pending = this.#pending === null ? chunk : Buffer.concat([chunk, this.#pending]);
  }

  /** The next complete line, or `undefined` until more bytes arrive. */
  next(): LineEvent | undefined {
    const buf = this.#pending;
    if (buf === null) return undefined;
    const lf = this.#lineEnd(buf);
    if (lf === -1) {
      if (buf.length > this.#maxLength) {
        // Keep the last byte: it may be the CR of the CRLF that ends the long line.
        this.#discarding = true;
        this.#pending = buf.subarray(buf.length - 1);
      }
      return undefined;
    }
    this.#pending = lf + 1 === buf.length ? null : buf.subarray(lf + 1);
    if (this.#discarding || lf + 1 > this.#maxLength) {
      this.#discarding = false;
      return { kind: 'tooLong' };
    }
    const bareLineFeed = lf === 0 || buf[lf - 1] !== CR;
    return { kind: 'line', line: buf.subarray(0, bareLineFeed ? lf : lf - 1), bareLineFeed };
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

  /** Hands over at most `max` bytes of what is held (a BDAT chunk's payload), or `null`. */
  take(max: number): Buffer | null {
    const buf = this.#pending;
    if (buf === null || max <= 0) return null;
    if (buf.length <= max) {
      this.#pending = null;
      return buf;
    }
    this.#pending = buf.subarray(max);
    return buf.subarray(0, max);
  }

  /** Hands over everything held, for the DATA decoder. */
  takeAll(): Buffer | null {
    const buf = this.#pending;
    this.#pending = null;
    return buf;
  }
}
