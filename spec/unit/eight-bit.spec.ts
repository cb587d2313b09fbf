/** What a relaying handler may pass on over DATA from a BINARYMIME message, under every split of the input. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { passableOverData } from '../../lib/handlers/eight-bit.js';
import { cutAt, everySplit } from '../helpers/splits.js';

/** The chunks as a source, one at a time. */
function fromChunks(chunks: Buffer[]): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]: () => {
      let i = 0;
      return {
        next: () => Promise.resolve(i < chunks.length ? { value: chunks[i++] as Buffer, done: false } : { value: undefined, done: true }),
      };
    },
  };
}

async function outcome(chunks: Buffer[], binary = true): Promise<string> {
  const out: Buffer[] = [];
  try {
    for await (const part of passableOverData(fromChunks(chunks), binary)) out.push(Buffer.from(part));
  } catch (err) {
    return `refused: ${(err as { logMessage?: string }).logMessage ?? String(err)}`;
  }
  return Buffer.concat(out).toString('latin1');
}

const CASES: [string, string][] = [
  ['Subject: x\r\n\r\n\u00e9t\u00e9\r\n', 'Subject: x\r\n\r\n\u00e9t\u00e9\r\n'],
  ['a\r\nb', 'a\r\nb'],
  ['a\nb\r\n', 'refused: BINARYMIME message refused: a bare LF, which DATA to the next hop would change'],
  ['a\rb\r\n', 'refused: BINARYMIME message refused: a bare CR, which DATA to the next hop would change'],
  ['a\r\nb\r', 'refused: BINARYMIME message refused: a bare CR, which DATA to the next hop would change'],
  ['a\u0000b\r\n', 'refused: BINARYMIME message refused: a NUL octet, which DATA to the next hop would change'],
  [`${'x'.repeat(998)}\r\n`, `${'x'.repeat(998)}\r\n`],
  [`${'x'.repeat(999)}\r\n`, 'refused: BINARYMIME message refused: a line longer than 998 octets, which DATA to the next hop would change'],
];

describe('passableOverData', () => {
  it.each(CASES)('decides %j the same under every split', async (input, expected) => {
    for (const chunks of everySplit(Buffer.from(input, 'latin1'))) expect(await outcome(chunks)).toBe(expected);
  });

  it('passes anything on unchanged when the message is not BINARYMIME', async () => {
    expect(await outcome([Buffer.from('a\nb\u0000\r')], false)).toBe('a\nb\u0000\r');
  });

  it('refuses exactly the inputs with a bare CR or LF, a NUL or a long line, wherever they are cut', async () => {
    const byte = fc.constantFrom(0x0d, 0x0a, 0x00, 0x41, 0xe9);
    await fc.assert(
      fc.asyncProperty(fc.array(byte, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 5 }), async (bytes, at) => {
        const input = Buffer.from(bytes);
        const text = input.toString('latin1');
        const plain = !/\r(?!\n)|(?<!\r)\n/.test(text) && !input.includes(0);
        const got = await outcome(cutAt(input, at));
        expect(got.startsWith('refused')).toBe(!plain);
        if (plain) expect(got).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});
