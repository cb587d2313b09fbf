/**
 * Buffer's own `indexOf`, `subarray` and `toString`, called through references taken once. Called
 * as methods (`buf.indexOf(LF)`), V8's optimized code fetched each method through its generic
 * property load on every call (about 90 to 150 instructions each, several times per line of a
 * message: bench/README.md); called this way it does not. Pure.
 *
 * The references are `const` bindings inside a function, not at the top of the module: the
 * package's bundler (scripts/bundle.mjs) turns a module's top-level `const` into `var`, and V8's
 * optimizing compiler inlines `method.call(buf, …)` only when `method` is a binding it knows
 * cannot change. Held at the top of the module, the built package called Buffer's `indexOf` as a
 * JavaScript function of its own on every line (about 4k instructions per message more than the
 * same code unbundled: bench/README.md).
 */
/**
 * The bytes the line splitter and the DATA decoder look for, as a const enum: each use compiles to
 * the number itself, where a module's top-level `const` is a variable in the bundled package.
 */
export const enum Byte {
  LF = 0x0a,
  CR = 0x0d,
  DOT = 0x2e,
}

function bufferMethods(): {
  readonly byteIndex: (buf: Buffer, byte: number, from?: number) => number;
  readonly bytesOf: (buf: Buffer, start: number, end: number) => Buffer;
  readonly latin1: (buf: Buffer, start?: number, end?: number) => string;
} {
  const prototype = Buffer.prototype as Buffer;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- always called with a Buffer as `this`
  const indexOf: (this: Buffer, value: number, byteOffset: number) => number = prototype.indexOf;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- always called with a Buffer as `this`
  const subarray: (this: Buffer, start: number, end: number) => Buffer = prototype.subarray;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- always called with a Buffer as `this`
  const toString: (this: Buffer, encoding: 'latin1', start: number, end: number) => string = prototype.toString;
  return {
    byteIndex: (buf, byte, from = 0) => indexOf.call(buf, byte, from),
    bytesOf: (buf, start, end) => subarray.call(buf, start, end),
    latin1: (buf, start = 0, end = buf.length) => toString.call(buf, 'latin1', start, end),
  };
}

const METHODS = bufferMethods();

/** The index of the first `byte` in `buf` at or after `from`, or -1. */
export const byteIndex: (buf: Buffer, byte: number, from?: number) => number = METHODS.byteIndex;

/** `buf.subarray(start, end)`, through a reference taken once as {@link byteIndex} does. */
export const bytesOf: (buf: Buffer, start: number, end: number) => Buffer = METHODS.bytesOf;

/** `buf.toString('latin1', start, end)`, through a reference taken once as {@link byteIndex} does. */
export const latin1: (buf: Buffer, start?: number, end?: number) => string = METHODS.latin1;
