/**
 * A message's header section held back while it streams, so fields can be removed from it before
 * a streaming handler reads it (the `Authentication-Results` fields that carry our own
 * authserv-id). The section is held until its blank line, at most `max` bytes; a longer one
 * passes through as it is.
 */

const END = Buffer.from('\r\n\r\n');

export class HeadGate {
  readonly #filter: (head: Buffer) => Buffer;
  readonly #max: number;
  #held: Buffer[] = [];
  #size = 0;
  #open = false;
  /** The last three bytes held: the blank line may straddle parts, however short they are. */
  #tail = Buffer.alloc(0);

  /** `filter`: the message so far (its whole header section, and what followed in the same part) without the unwanted fields. */
  constructor(filter: (head: Buffer) => Buffer, max = 1024 * 1024) {
    this.#filter = filter;
    this.#max = max;
  }

  /** What to pass on for `part`: nothing while the header section is held; then that section, filtered, and the rest. */
  pass(part: Buffer): Buffer[] {
    if (this.#open) return [part];
    const window = this.#tail.length === 0 ? part : Buffer.concat([this.#tail, part]);
    const found = window.indexOf(END);
    this.#tail = Buffer.from(window.subarray(Math.max(0, window.length - 3)));
    // Copied: a part's memory may be read into again once it is passed.
    this.#held.push(Buffer.from(part));
    this.#size += part.length;
    if (found !== -1) return this.#release(true);
    if (this.#size > this.#max) return this.#release(false);
    return [];
  }

  /** The message ended: what is still held (a message that was all header), filtered. */
  end(): Buffer[] {
    if (this.#open) return [];
    return this.#release(true);
  }

  #release(filtered: boolean): Buffer[] {
    this.#open = true;
    const whole = Buffer.concat(this.#held, this.#size);
    this.#held = [];
    this.#size = 0;
    const out = filtered ? this.#filter(whole) : whole;
    return out.length === 0 ? [] : [out];
  }
}
