import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteIndex } from '../../lib/protocol/byte-index.js';

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
});
