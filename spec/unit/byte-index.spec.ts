import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteIndex, bytesOf, latin1 } from '../../lib/protocol/byte-index.js';

describe('byteIndex', () => {
  it('finds what Buffer#indexOf finds, from any offset, in any part of a larger buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(255), fc.nat(70), fc.nat(8), (bytes, byte, from, offset) => {
        const whole = Buffer.alloc(bytes.length + offset + 3, byte);
        const buf = whole.subarray(offset, offset + bytes.length);
        buf.set(bytes);
        expect(byteIndex(buf, byte, from)).toBe(buf.indexOf(byte, from));
        expect(byteIndex(buf, byte)).toBe(buf.indexOf(byte));
      }),
    );
  });

  it('bytesOf and latin1 give what subarray and toString give, over the same memory', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(70), fc.nat(70), fc.nat(8), (bytes, a, b, offset) => {
        const whole = Buffer.alloc(bytes.length + offset + 3, 0x41);
        const buf = whole.subarray(offset, offset + bytes.length);
        buf.set(bytes);
        const start = Math.min(a, b, buf.length);
        const end = Math.min(Math.max(a, b), buf.length);
        const view = bytesOf(buf, start, end);
        expect(view.equals(buf.subarray(start, end))).toBe(true);
        expect(view.buffer).toBe(buf.buffer);
        expect(view.byteOffset).toBe(buf.byteOffset + start);
        expect(latin1(buf, start, end)).toBe(buf.toString('latin1', start, end));
        expect(latin1(buf)).toBe(buf.toString('latin1'));
      }),
    );
  });
});
