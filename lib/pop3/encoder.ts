/**
 * A message as a POP3 multi-line response carries it (RFC 1939 §3), made while it is read, in
 * pieces of any size: CRLF line ends (a bare LF becomes CRLF), a `.` before each line that starts
 * with one, a line end after a last line without one, and the terminating `.` line. For TOP, the
 * header section, the blank line and the first n lines of the body. Pure: bytes in, bytes out,
 * whatever way the input is cut.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BYTE = Buffer.from('.');
const END = Buffer.from('.\r\n');

export class Pop3Encoder {
  /** Body lines still to send (TOP); `undefined`: all of them. */
  #bodyLinesLeft: number | undefined;
  #atLineStart = true;
  /** The current line's length so far, its CR excepted. */
  #lineLength = 0;
  /** The input's last byte was a CR not yet known to end a line. */
  #pendingCR = false;
  #inBody = false;
  /** TOP sent all it should: the rest is dropped. */
  #done = false;

  constructor(bodyLines?: number) {
    this.#bodyLinesLeft = bodyLines;
  }

  /** The response bytes for the next piece of the message. */
  push(chunk: Uint8Array): Buffer {
    const out: Buffer[] = [];
    let start = 0;
    const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#pendingCR) {
      this.#pendingCR = false;
      if (text[0] !== LF) this.#data(out, Buffer.from([CR]));
    }
    while (start < text.length && !this.#done) {
      const lf = text.indexOf(LF, start);
      if (lf === -1) {
        let end = text.length;
        if (text[end - 1] === CR) {
          end--;
          this.#pendingCR = true;
        }
        if (end > start) this.#data(out, text.subarray(start, end));
        break;
      }
      const end = lf > start && text[lf - 1] === CR ? lf - 1 : lf;
      if (end > start) this.#data(out, text.subarray(start, end));
      this.#lineEnd(out);
      start = lf + 1;
    }
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** The last bytes: an unfinished line's end, then the terminating `.`. */
  end(): Buffer {
    const out: Buffer[] = [];
    if (this.#pendingCR && !this.#done) this.#data(out, Buffer.from([CR]));
    this.#pendingCR = false;
    if (!this.#atLineStart && !this.#done) this.#lineEnd(out);
    out.push(END);
    return Buffer.concat(out);
  }

  #data(out: Buffer[], bytes: Buffer): void {
    if (this.#done || bytes.length === 0) return;
    if (this.#atLineStart && bytes[0] === DOT) out.push(DOT_BYTE);
    out.push(bytes);
    this.#atLineStart = false;
    this.#lineLength += bytes.length;
  }

  #lineEnd(out: Buffer[]): void {
    if (this.#done) return;
    const wasBlank = this.#lineLength === 0;
    out.push(CRLF);
    this.#atLineStart = true;
    this.#lineLength = 0;
    if (!this.#inBody) {
      if (wasBlank) {
        this.#inBody = true;
        if (this.#bodyLinesLeft === 0) this.#done = true;
      }
      return;
    }
    if (this.#bodyLinesLeft !== undefined && --this.#bodyLinesLeft <= 0) this.#done = true;
  }
}

/**
 * A whole message as a POP3 multi-line response (see {@link Pop3Encoder}); with `bodyLines`, as TOP
 * sends it.
 */
export function pop3Content(message: Uint8Array, bodyLines?: number): Buffer {
  const encoder = new Pop3Encoder(bodyLines);
  return Buffer.concat([encoder.push(message), encoder.end()]);
}
