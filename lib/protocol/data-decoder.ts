/**
 * The DATA decoder: an explicit byte state machine that removes dot-stuffing and finds the end of
 * the message. Pure: bytes in, body and outcome out.
 *
 * Guarantees:
 * - The message ends only at `<CRLF>.<CRLF>` (RFC 5321 §4.1.1.4), where the first CRLF is a real
 *   one or the start of the data. No bare LF or bare CR variant (`<LF>.<LF>`, `<CR>.<CR>`,
 *   `<LF>.<CRLF>` …) ever ends it or splits it in two: that is the SMTP smuggling class
 *   (CVE-2023-51764, CVE-2023-51765, CVE-2023-51766).
 * - A leading dot is removed only at the start of a real line, after CRLF (RFC 5321 §4.5.2).
 * - Bare CR and bare LF inside the body follow one {@link BareLineEndingPolicy}.
 * - Past `maxSize` body bytes, the rest is decoded but dropped, so memory stays bounded while the
 *   end is still found exactly.
 *
 * The common case copies nothing: runs of the input are emitted as sub-arrays. With a sink, each
 * run goes to the sink as it is decoded instead of being collected, so a streamed message is never
 * held whole.
 */

import { Byte, byteIndex, bytesOf } from './byte-index.js';

const CRLF_BYTES = Buffer.from('\r\n');
const LF_BYTES = Buffer.from('\n');
const CR_BYTES = Buffer.from('\r');
const DOT_BYTES = Buffer.from('.');
const EMPTY = Buffer.alloc(0);

/**
 * What to do with a CR or LF that is not part of a CRLF pair inside the message body.
 * - `normalize` (default): turn it into CRLF. No mail is lost from sloppy clients, and the stored
 *   or relayed message has only CRLF line ends, so no later hop can be smuggled through it.
 * - `reject`: read the message to its end, then refuse it with `554 5.6.0`.
 * - `keep`: store the bytes as they came.
 *
 * @example
 * ```ts
 * new Application(Inbound, { bareLineEndings: 'reject' satisfies BareLineEndingPolicy });
 * ```
 */
export type BareLineEndingPolicy = 'normalize' | 'reject' | 'keep';

const enum State {
  /** At the start of a line: after CRLF, or at the start of the data. */
  LineStart,
  /** Saw `.` at the start of a line. */
  Dot,
  /** Saw `.` CR at the start of a line. */
  DotCR,
  /** Inside a line. */
  InLine,
  /** Inside a line, saw CR (already emitted). */
  CR,
  /** The end-of-data sequence was seen. */
  Done,
}

/** The outcome of a finished message. */
export interface DecodedMessage {
  /** The body with dot-stuffing removed; empty when it exceeded `maxSize`. */
  readonly body: Buffer;
  /** Body bytes seen, including those dropped past `maxSize`. */
  readonly size: number;
  /** Whether `size` exceeded `maxSize`. */
  readonly tooBig: boolean;
  /** Whether any bare CR or LF was seen (whatever the policy did with it). */
  readonly bareLineEndings: boolean;
}

/** Takes the decoded body's runs in order, up to `maxSize` bytes; nothing past it. */
export interface BodySink {
  write(part: Buffer): void;
}

export class DataDecoder {
  readonly #maxSize: number;
  readonly #policy: BareLineEndingPolicy;
  readonly #sink: BodySink | undefined;
  #state: State = State.LineStart;
  #parts: Buffer[] = [];
  #size = 0;
  #bare = false;

  constructor(maxSize: number, policy: BareLineEndingPolicy = 'normalize', sink?: BodySink) {
    this.#maxSize = maxSize;
    this.#policy = policy;
    this.#sink = sink;
  }

  /** Whether the body has passed `maxSize` (the rest is decoded and dropped). */
  get tooBig(): boolean {
    return this.#size > this.#maxSize;
  }

  /** Whether the end-of-data sequence has been seen. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /**
   * Feeds bytes. Returns `undefined` while the message goes on, or the bytes that follow the
   * end-of-data sequence (possibly empty: pipelined commands) once it ends.
   */
  push(chunk: Buffer): Buffer | undefined {
    if (this.#state === State.Done) throw new Error('DataDecoder: push() after the end of data');
    const n = chunk.length;
    let state = this.#state; // kept in a local while the loop runs: stored back before each return
    let i = 0;
    let runStart = 0; // start of the bytes to emit as they are
    let nextCR = -2; // cached positions: indexOf is only repeated once passed
    let nextLF = -2;
    while (i < n) {
      switch (state) {
        case State.LineStart:
          if (chunk[i] === Byte.DOT) {
            this.#emit(chunk, runStart, i);
            state = State.Dot;
            i++;
            runStart = i;
          } else {
            state = State.InLine;
          }
          break;
        case State.Dot: {
          const b = chunk[i];
          if (b === Byte.CR) {
            state = State.DotCR;
            i++;
            runStart = i;
          } else {
            // `.` then a bare LF: a line holding a lone dot, never the end of the data. Anything
            // else: the dot was stuffing (RFC 5321 §4.5.2), dropped, and the line goes on.
            if (b === Byte.LF) this.#emitBytes(DOT_BYTES);
            state = State.InLine;
          }
          break;
        }
        case State.DotCR:
          if (chunk[i] === Byte.LF) {
            this.#state = State.Done;
            // Most often nothing follows the final dot in its read: no view is made for nothing.
            return i + 1 === n ? EMPTY : bytesOf(chunk, i + 1, n);
          }
          // `.` CR then something else: the dot was stuffing, the CR is bare.
          this.#emitBytes(CR_BYTES);
          this.#bareCR();
          state = State.InLine;
          break;
        case State.CR:
          if (chunk[i] === Byte.LF) {
            i++;
            state = State.LineStart;
          } else {
            this.#emit(chunk, runStart, i);
            runStart = i;
            this.#bareCR();
            state = State.InLine;
          }
          break;
        case State.InLine:
          if (nextCR !== -1 && nextCR < i) nextCR = byteIndex(chunk, Byte.CR, i);
          if (nextLF !== -1 && nextLF < i) nextLF = byteIndex(chunk, Byte.LF, i);
          if (nextCR === -1 && nextLF === -1) {
            i = n;
          } else if (nextLF === -1 || (nextCR !== -1 && nextCR < nextLF)) {
            if (nextLF === nextCR + 1) {
              // The line ends in CRLF: the next one starts, still inside the line unless at a dot
              // or at the end of the chunk (the common line takes one turn of the loop, not three).
              i = nextLF + 1;
              if (i === n || chunk[i] === Byte.DOT) state = State.LineStart;
            } else {
              i = nextCR + 1;
              state = State.CR;
            }
          } else {
            // A bare LF inside a line.
            this.#emit(chunk, runStart, nextLF);
            this.#bare = true;
            this.#emitBytes(this.#policy === 'normalize' ? CRLF_BYTES : LF_BYTES);
            i = nextLF + 1;
            runStart = i;
          }
          break;
      }
    }
    this.#state = state;
    if (state !== State.Dot && state !== State.DotCR) this.#emit(chunk, runStart, n);
    return undefined;
  }

  /** The decoded message; call once {@link done} is true. With a sink, `body` is empty. */
  result(): DecodedMessage {
    const tooBig = this.#size > this.#maxSize;
    return {
      body: tooBig || this.#sink !== undefined ? EMPTY : join(this.#parts, this.#size),
      size: this.#size,
      tooBig,
      bareLineEndings: this.#bare,
    };
  }

  #bareCR(): void {
    this.#bare = true;
    // The CR itself was emitted with its run; normalizing adds the LF it lacked.
    if (this.#policy === 'normalize') this.#emitBytes(LF_BYTES);
  }

  #emit(chunk: Buffer, from: number, to: number): void {
    if (to > from) this.#emitBytes(bytesOf(chunk, from, to));
  }

  #emitBytes(bytes: Buffer): void {
    this.#size += bytes.length;
    if (this.#size > this.#maxSize) {
      this.#parts = [];
      return;
    }
    if (this.#sink === undefined) this.#parts.push(bytes);
    else this.#sink.write(bytes);
  }
}

/**
 * The body as one Buffer. A body that arrived in one run of one read is handed over as it is,
 * without a copy, when `keepsAsIs` allows it; otherwise, and for bodies in several parts,
 * the parts are copied into one Buffer. A body's last part always holds its final CRLF, which
 * comes from the input, so a one-part body is a piece of the input and never one of the shared
 * constants above.
 */
function join(parts: readonly Buffer[], size: number): Buffer {
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only !== undefined && keepsAsIs(only)) return only;
  return Buffer.concat(parts, size);
}

/**
 * Newer Node lines (26) align the start of their small-buffer pool, allocating its memory this
 * many bytes larger than `Buffer.poolSize`.
 */
const POOL_ALIGNMENT = 64;

/** Whether memory of this size may be a slab of Node's small-buffer pool. */
export function poolSized(backing: ArrayBufferLike): boolean {
  return backing.byteLength <= Buffer.poolSize + POOL_ALIGNMENT;
}

/**
 * Whether a body that is one view of a read may be handed over as it is instead of copied into a
 * Buffer of its own: when it fills at least half of the memory it keeps alive, or when it lies in
 * Node's small-buffer pool ({@link poolSized}) and is small enough that the copy would be taken from that
 * pool too (`Buffer.allocUnsafe` below half of `Buffer.poolSize`): the copy would then keep a pool
 * slab alive just as the view does, at the cost of an allocation and a copy.
 */
function keepsAsIs(view: Buffer): boolean {
  const backing = view.buffer;
  return view.byteLength * 2 >= backing.byteLength || (poolSized(backing) && view.byteLength < Buffer.poolSize >>> 1);
}
