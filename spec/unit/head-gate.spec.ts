/**
 * The header section held back while a message streams, and our own Authentication-Results
 * fields taken out of it: the same bytes whatever the split of the input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeadGate } from '../../lib/app/head-gate.js';
import { withoutOwnResults } from '../../lib/auth/verify.js';

const strip = (message: Buffer): Buffer => withoutOwnResults(message, 'mx.test');

/** Feeds `message` cut at `cuts` through a gate; what came out. */
function gated(message: Buffer, cuts: readonly number[], max?: number): Buffer {
  const gate = new HeadGate(strip, max);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, message.length]) {
    for (const part of gate.pass(message.subarray(from, cut))) out.push(part);
    from = cut;
  }
  out.push(...gate.end());
  return Buffer.concat(out);
}

const MESSAGE = Buffer.from(
  'Authentication-Results: mx.test; dkim=pass\r\n' +
    'Received: from a\r\n' +
    'Authentication-Results: (forged) MX.Test;\r\n\tspf=pass\r\n' +
    'Authentication-Results: other.example; spf=fail\r\n' +
    'Subject: hi\r\n' +
    '\r\n' +
    'Authentication-Results: mx.test; in the body, kept\r\n',
);
const EXPECTED =
  'Received: from a\r\n' +
  'Authentication-Results: other.example; spf=fail\r\n' +
  'Subject: hi\r\n' +
  '\r\n' +
  'Authentication-Results: mx.test; in the body, kept\r\n';

describe('withoutOwnResults', () => {
  it('removes the fields with our authserv-id (comments and case aside), folded lines with them, and nothing of the body', () => {
    expect(strip(MESSAGE).toString()).toBe(EXPECTED);
  });

  it('returns the message itself when it has no field to remove', () => {
    const plain = Buffer.from('Subject: hi\r\n\r\nbody\r\n');
    expect(strip(plain)).toBe(plain);
    const other = Buffer.from('Authentication-Results: mx.test.example; spf=pass\r\n\r\n');
    expect(strip(other)).toBe(other);
  });
});

describe('HeadGate', () => {
  it('gives the same bytes for every split of the input into two and three parts', () => {
    for (let i = 0; i <= MESSAGE.length; i++) {
      expect(gated(MESSAGE, [i]).toString()).toBe(EXPECTED);
      for (let j = i; j <= MESSAGE.length; j += 7) expect(gated(MESSAGE, [i, j]).toString()).toBe(EXPECTED);
    }
  });

  it('finds the blank line across parts of one byte, within a bound just past the header section', () => {
    const cuts = Array.from({ length: MESSAGE.length - 1 }, (_, i) => i + 1);
    expect(gated(MESSAGE, cuts, MESSAGE.indexOf('\r\n\r\n') + 8).toString()).toBe(EXPECTED);
  });

  it('filters a message that is all header, and passes a header section past its bound as it is', () => {
    expect(gated(Buffer.from('Authentication-Results: mx.test; x\r\nSubject: a\r\n'), [5]).toString()).toBe('Subject: a\r\n');
    const long = Buffer.from(`Authentication-Results: mx.test; x\r\nX-Long: ${'a'.repeat(100)}\r\n\r\nbody`);
    expect(gated(long, [10, 20, 30, 40, 50, 60, 70], 64)).toEqual(long);
  });

  it('property: any message and any cuts give what withoutOwnResults gives the whole', () => {
    const field = fc.constantFrom(
      'Authentication-Results: mx.test; spf=pass\r\n',
      'Authentication-Results: other.example; spf=pass\r\n',
      'Subject: x\r\n',
      'X-Folded: a\r\n b\r\n',
    );
    fc.assert(
      fc.property(
        fc.array(field, { maxLength: 8 }),
        fc.string({ maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (fields, body, raw) => {
          const message = Buffer.from(`${fields.join('')}\r\n${body}`);
          const cuts = raw.map((n) => n % (message.length + 1)).sort((a, b) => a - b);
          expect(gated(message, cuts)).toEqual(strip(message));
        },
      ),
      { numRuns: 300 },
    );
  });
});
