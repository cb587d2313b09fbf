import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataDecoder, type BareLineEndingPolicy } from '../../lib/protocol/data-decoder.js';
import { cutAt, everySplit } from '../helpers/splits.js';

interface Outcome {
  body: string;
  rest: string | undefined;
  bare: boolean;
  tooBig: boolean;
}

function decode(chunks: Buffer[], policy: BareLineEndingPolicy = 'normalize', maxSize = 1 << 20): Outcome {
  const decoder = new DataDecoder(maxSize, policy);
  let rest: Buffer | undefined;
  for (const chunk of chunks) {
    if (rest !== undefined) {
      rest = Buffer.concat([rest, chunk]);
      continue;
    }
    rest = decoder.push(chunk);
  }
  if (rest === undefined) return { body: '', rest: undefined, bare: false, tooBig: false };
  const result = decoder.result();
  return { body: result.body.toString('latin1'), rest: rest.toString('latin1'), bare: result.bareLineEndings, tooBig: result.tooBig };
}

/** Every way to cut `input` in two, every byte alone, and all at once. */
function splits(input: string): Buffer[][] {
  return everySplit(Buffer.from(input, 'latin1'));
}

function expectAllSplits(input: string, expected: Partial<Outcome>, policy: BareLineEndingPolicy = 'normalize'): void {
  for (const chunks of splits(input)) expect(decode(chunks, policy)).toMatchObject(expected);
}

/** How a correct client sends `body` (RFC 5321 §4.5.2). */
function stuff(body: string): string {
  const withEnd = body === '' || body.endsWith('\r\n') ? body : `${body}\r\n`;
  return `${withEnd.replace(/^\./gm, '..')}.\r\n`;
}

describe('DataDecoder', () => {
  it('ends at CRLF.CRLF and keeps the final CRLF in the body', () => {
    expectAllSplits('Subject: x\r\n\r\nhello\r\n.\r\n', { body: 'Subject: x\r\n\r\nhello\r\n', rest: '' });
  });

  it('takes an empty body: a dot right after 354', () => {
    expectAllSplits('.\r\n', { body: '', rest: '' });
  });

  it('removes one leading dot only at the start of a line', () => {
    expectAllSplits('..one\r\na.b\r\n...\r\n.\r\n', { body: '.one\r\na.b\r\n..\r\n', rest: '' });
  });

  it('returns the bytes after the end for pipelined commands', () => {
    expectAllSplits('x\r\n.\r\nQUIT\r\n', { body: 'x\r\n', rest: 'QUIT\r\n' });
  });

  it.each([
    ['LF.LF', 'a\n.\nMAIL FROM:<evil@x>\r\n'],
    ['LF.CRLF', 'a\n.\r\nMAIL FROM:<evil@x>\r\n'],
    ['CRLF.LF', 'a\r\n.\nMAIL FROM:<evil@x>\r\n'],
    ['CR.CR', 'a\r.\rMAIL FROM:<evil@x>\r\n'],
    ['CR.CRLF', 'a\r.\r\nMAIL FROM:<evil@x>\r\n'],
    ['CRLF.CR', 'a\r\n.\rMAIL FROM:<evil@x>\r\n'],
  ])('never ends the data at %s (SMTP smuggling)', (_name, input) => {
    for (const policy of ['normalize', 'keep', 'reject'] as const) {
      for (const chunks of splits(input)) expect(decode(chunks, policy).rest).toBeUndefined();
    }
    // ...and the real end still works afterwards, holding the smuggled text as data.
    const outcome = decode([Buffer.from(`${input}.\r\n`, 'latin1')], 'keep');
    expect(outcome.rest).toBe('');
    expect(outcome.body).toContain('MAIL FROM:<evil@x>');
    expect(outcome.bare).toBe(true);
  });

  it('normalizes bare LF and bare CR to CRLF by default', () => {
    expectAllSplits('a\nb\rc\r\n.\r\n', { body: 'a\r\nb\r\nc\r\n', bare: true });
  });

  it('keeps bare line ends under the keep policy', () => {
    expectAllSplits('a\nb\rc\r\n.\r\n', { body: 'a\nb\rc\r\n', bare: true }, 'keep');
  });

  it('flags bare line ends under the reject policy', () => {
    expectAllSplits('a\nb\r\n.\r\n', { bare: true, rest: '' }, 'reject');
    expectAllSplits('a\r\nb\r\n.\r\n', { bare: false, rest: '' }, 'reject');
  });

  it('does not unstuff after a bare LF: only a real CRLF starts a line', () => {
    expectAllSplits('a\n..b\r\n.\r\n', { body: 'a\r\n..b\r\n' });
  });

  it('keeps a lone dot ended by a bare LF as data', () => {
    // The ".\r\n" after the bare LF is not at the start of a real line either.
    expectAllSplits('.\n.\r\n.\r\n', { body: '.\r\n.\r\n', rest: '' });
  });

  it('drops the body past maxSize but still finds the end', () => {
    const decoder = new DataDecoder(10);
    expect(decoder.push(Buffer.from('0123456789abcdef\r\n'))).toBeUndefined();
    expect(decoder.push(Buffer.from('more\r\n.\r\nNOOP\r\n'))?.toString()).toBe('NOOP\r\n');
    const result = decoder.result();
    expect(result).toMatchObject({ tooBig: true, size: 24 });
    expect(result.body.length).toBe(0);
  });

  it('hands over a one-run body without a copy only when it fills most of its read buffer', () => {
    const body = 'Subject: x\r\n\r\nhello\r\n';
    const whole = Buffer.from(new ArrayBuffer(body.length + 3));
    whole.write(`${body}.\r\n`, 'latin1');
    const shared = new DataDecoder(1 << 20);
    expect(shared.push(whole)).toEqual(Buffer.alloc(0));
    expect(shared.result().body.buffer).toBe(whole.buffer);

    // Larger than Node's small-buffer pool (8 KiB on Node 20 and 22, 64 KiB on Node 24).
    const big = Buffer.alloc(4 * Buffer.poolSize);
    big.write(`${body}.\r\n`, 'latin1');
    const copied = new DataDecoder(1 << 20);
    copied.push(big.subarray(0, body.length + 3));
    const result = copied.result().body;
    expect(result.toString('latin1')).toBe(body);
    expect(result.buffer).not.toBe(big.buffer);
  });

  it('hands over a small one-run body lying in the small-buffer pool as it is: a copy would lie in the pool too', () => {
    const body = 'Subject: x\r\n\r\nhello\r\n';
    const read = Buffer.allocUnsafe(body.length + 3);
    read.write(`${body}.\r\n`, 'latin1');
    // A slab of the pool: Buffer.poolSize bytes, 64 more where Node aligns its start (Node 26).
    expect(read.buffer.byteLength - Buffer.poolSize).toBeOneOf([0, 64]);
    const pooled = new DataDecoder(1 << 20);
    pooled.push(read);
    const kept = pooled.result().body;
    expect([kept.buffer, kept.byteOffset]).toEqual([read.buffer, read.byteOffset]);
    expect(kept.toString('latin1')).toBe(body);

    // A view of a pool-sized buffer no smaller than half the pool would be copied into memory of
    // its own, not into the pool: it is handed over only when it fills half of what it keeps alive.
    const half = Buffer.alloc(Buffer.poolSize);
    half.write('x'.repeat(Buffer.poolSize / 2 - 2), 'latin1');
    half.write('\r\n.\r\n', Buffer.poolSize / 2 - 2, 'latin1');
    const filled = new DataDecoder(1 << 20);
    filled.push(half.subarray(0, Buffer.poolSize / 2 + 3));
    expect(filled.result().body.buffer).toBe(half.buffer);
  });

  it('refuses push() after the end', () => {
    const decoder = new DataDecoder(10);
    decoder.push(Buffer.from('.\r\n'));
    expect(() => decoder.push(Buffer.from('x'))).toThrow(/after the end/);
  });

  const line = fc.stringMatching(/^[ -~]{0,40}$/);
  const body = fc.array(line, { maxLength: 12 }).map((lines) => lines.map((l) => `${l}\r\n`).join(''));
  const cuts = fc.array(fc.nat(), { maxLength: 8 });

  it('property: decoding what a correct client sends gives back the body, however it is cut', () => {
    fc.assert(
      fc.property(body, cuts, (text, at) => {
        const wire = Buffer.from(`${stuff(text)}NEXT`, 'latin1');
        expect(decode(cutAt(wire, at))).toMatchObject({ body: text, rest: 'NEXT', bare: false });
      }),
      { numRuns: 500 },
    );
  });

  it('property: no input without CRLF.CRLF ever ends the data', () => {
    const bytes = fc.array(fc.constantFrom('.', '\r', '\n', 'a', ' '), { maxLength: 30 }).map((a) => a.join(''));
    fc.assert(
      fc.property(bytes, cuts, (text, at) => {
        const wire = Buffer.from(text, 'latin1');
        const ends = `\r\n${text}`.includes('\r\n.\r\n');
        const outcome = decode(cutAt(wire, at), 'keep');
        expect(outcome.rest !== undefined).toBe(ends);
      }),
      { numRuns: 1000 },
    );
  });

  it('property: keep policy is lossless for any bytes before the end', () => {
    const bytes = fc.array(fc.constantFrom('.', '\r', '\n', 'a'), { maxLength: 30 }).map((a) => a.join(''));
    fc.assert(
      fc.property(bytes, cuts, (text, at) => {
        fc.pre(!`\r\n${text}\r\n`.includes('\r\n.'));
        const wire = Buffer.from(`${text}\r\n.\r\n`, 'latin1');
        expect(decode(cutAt(wire, at), 'keep').body).toBe(`${text}\r\n`);
      }),
      { numRuns: 500 },
    );
  });
});
