/**
 * One message's body on its way in, from the first byte of DATA or BDAT to the end: either fed to
 * the streaming handler's {@link MessageStream}, or held whole for a buffered handler within the
 * application's {@link BodyBudget}. DATA and BDAT feed it alike, so a handler cannot tell them apart.
 */
import type { BodyBudget } from '../app/body-budget.js';
import type { MessageStream } from '../app/message-stream.js';
import { isAnyReadBuffer } from '../net/reader.js';
import { poolSized, type BodySink } from '../protocol/data-decoder.js';

/**
 * A held part smaller than this is copied into a run of its own memory instead of kept as a
 * Buffer of its own: a Buffer costs a few hundred bytes whatever its length, so a body sent as a
 * million one-byte BDAT chunks would cost 250 times what the budget counts.
 */
const SMALL_PART = 8 * 1024;
/** The first run small parts are gathered in; each next one twice as large, up to the last. */
const FIRST_RUN = 4 * 1024;
const LAST_RUN = 64 * 1024;

export class MessageBody implements BodySink {
  readonly stream: MessageStream | null;
  readonly #budget: BodyBudget;
  #parts: Buffer[] = [];
  /** Bytes of the body held. */
  #bodyBytes = 0;
  /** Bytes counted against the budget: the memory the held parts keep alive, each backing store once. */
  #held = 0;
  #lastBacking: ArrayBufferLike | null = null;
  #size = 0;
  #overBudget = false;
  #backedUp = false;
  /** Where small parts are gathered: the run, where its not yet held part starts, and how much is used. */
  #run: Buffer | null = null;
  #runStart = 0;
  #runUsed = 0;

  constructor(stream: MessageStream | null, budget: BodyBudget) {
    this.stream = stream;
    this.#budget = budget;
  }

  /** Body bytes seen, held or not. */
  get size(): number {
    return this.#size;
  }

  /** Whether holding the body would have passed the budget (what was held is let go). */
  get overBudget(): boolean {
    return this.#overBudget;
  }

  /** Takes a run of the body (the decoder's sink). */
  write(part: Buffer): void {
    this.#size += part.length;
    if (this.stream !== null) {
      if (!this.stream.feed(part)) this.#backedUp = true;
      return;
    }
    if (this.#overBudget) return;
    // The first part is kept as it came: a small message in one read is handed over without a copy.
    if (part.length < SMALL_PART && (this.#parts.length > 0 || this.#run !== null)) {
      this.#gather(part);
      return;
    }
    this.#closeRun();
    // A part is a view of a read buffer, which it keeps alive whole: that is what is counted. A
    // view of Node's small-buffer pool counts its own bytes (the pool is shared); a view that
    // would keep alive more than twice its size is copied out, so a small body read through a
    // 64 KiB buffer neither holds nor counts 64 KiB.
    let kept = part;
    const backing = part.buffer;
    let cost: number;
    if (inPool(backing)) {
      cost = part.length;
    } else if (backing.byteLength > 2 * part.length) {
      kept = Buffer.allocUnsafeSlow(part.length);
      part.copy(kept);
      cost = part.length;
    } else {
      cost = backing === this.#lastBacking ? 0 : backing.byteLength;
      this.#lastBacking = backing;
    }
    if (!this.#budget.take(cost)) {
      this.#overBudget = true;
      this.release();
      return;
    }
    this.#parts.push(kept);
    this.#held += cost;
    this.#bodyBytes += part.length;
  }

  /** Copies a small part into the current run, starting a new one (counted whole) when it is full. */
  #gather(part: Buffer): void {
    let run = this.#run;
    if (run === null || run.length - this.#runUsed < part.length) {
      this.#closeRun();
      const size = Math.min(LAST_RUN, Math.max(FIRST_RUN, run === null ? 0 : run.length * 2));
      if (!this.#budget.take(size)) {
        this.#overBudget = true;
        this.release();
        return;
      }
      this.#held += size;
      run = this.#run = Buffer.allocUnsafeSlow(size);
      this.#runStart = this.#runUsed = 0;
    }
    part.copy(run, this.#runUsed);
    this.#runUsed += part.length;
    this.#bodyBytes += part.length;
  }

  /** Holds what was gathered in the run so far as one part, so the parts stay in order. */
  #closeRun(): void {
    const run = this.#run;
    if (run === null || this.#runUsed === this.#runStart) return;
    this.#parts.push(run.subarray(this.#runStart, this.#runUsed));
    this.#runStart = this.#runUsed;
  }

  /** Whether the stream's reader fell behind since the last call: wait for its demand before reading more. */
  takeBackedUp(): boolean {
    const backedUp = this.#backedUp;
    this.#backedUp = false;
    return backedUp;
  }

  /**
   * The held body as one Buffer, or `null` when joining it would pass the budget. A body that
   * arrived in one part is handed over as `write()` held it; otherwise the parts are joined into
   * a Buffer of the body's size, which is counted before it is made, and the parts' count is let
   * go once it is.
   */
  body(): Buffer | null {
    this.#closeRun();
    this.#run = null;
    const parts = this.#parts;
    const only = parts.length === 1 ? parts[0] : undefined;
    // write() held the part within its rule (a slice of the pool, a view that fills half of its
    // memory, or a copy): a joined copy would keep as much alive (the pool's slab, or its size).
    if (only !== undefined) return only;
    if (!this.#budget.take(this.#bodyBytes)) {
      this.#overBudget = true;
      this.release();
      return null;
    }
    const joined = Buffer.concat(parts, this.#bodyBytes);
    this.#parts = [];
    this.#budget.release(this.#held);
    this.#held = this.#bodyBytes;
    return joined;
  }

  /** The body is no longer held by the server: its bytes leave the budget. */
  release(): void {
    this.#run = null;
    if (this.#held === 0) return;
    this.#parts = [];
    this.#budget.release(this.#held);
    this.#held = 0;
  }
}

/**
 * Whether a part's memory is (as far as its size tells) a slab of Node's buffer pool, shared with
 * other allocations: not a socket's own read buffer, which may be the pool's size (64 KiB from
 * Node 24 on) and which a view keeps alive whole.
 */
function inPool(backing: ArrayBufferLike): boolean {
  return poolSized(backing) && !isAnyReadBuffer(backing);
}
