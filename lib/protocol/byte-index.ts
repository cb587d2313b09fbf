/**
 * Where a byte first occurs in a Buffer: Buffer's own `indexOf`, called through a reference taken
 * once. Called as a method (`buf.indexOf(LF)`), V8's optimized code fetched the method through its
 * generic property load on every call (about 90 instructions each, twice per line of a message:
 * bench/README.md); called this way it does not. Pure.
 */
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called with a Buffer as `this`
const INDEX_OF: (this: Buffer, value: number, byteOffset: number) => number = (Buffer.prototype as Buffer).indexOf;

/** The index of the first `byte` in `buf` at or after `from`, or -1. */
export function byteIndex(buf: Buffer, byte: number, from = 0): number {
  return INDEX_OF.call(buf, byte, from);
}
