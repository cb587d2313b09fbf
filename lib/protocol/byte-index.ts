/**
 * Buffer's own `indexOf`, `subarray` and `toString`, called through references taken once. Called
 * as methods (`buf.indexOf(LF)`), V8's optimized code fetched each method through its generic
 * property load on every call (about 90 to 150 instructions each, several times per line of a
 * message: bench/README.md); called this way it does not. Pure.
 */
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called with a Buffer as `this`
const INDEX_OF: (this: Buffer, value: number, byteOffset: number) => number = (Buffer.prototype as Buffer).indexOf;

/** The index of the first `byte` in `buf` at or after `from`, or -1. */
export function byteIndex(buf: Buffer, byte: number, from = 0): number {
  return INDEX_OF.call(buf, byte, from);
}

// eslint-disable-next-line @typescript-eslint/unbound-method -- always called with a Buffer as `this`
const SUBARRAY: (this: Buffer, start: number, end: number) => Buffer = (Buffer.prototype as Buffer).subarray;
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called with a Buffer as `this`
const TO_STRING: (this: Buffer, encoding: 'latin1', start: number, end: number) => string = (Buffer.prototype as Buffer).toString;

/** `buf.subarray(start, end)`, through a reference taken once as {@link byteIndex} does. */
export function bytesOf(buf: Buffer, start: number, end: number): Buffer {
  return SUBARRAY.call(buf, start, end);
}

/** `buf.toString('latin1', start, end)`, through a reference taken once as {@link byteIndex} does. */
export function latin1(buf: Buffer, start = 0, end = buf.length): string {
  return TO_STRING.call(buf, 'latin1', start, end);
}
