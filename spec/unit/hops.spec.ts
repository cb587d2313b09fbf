import { describe, expect, it } from 'vitest';
import { checkedHops, countReceived } from '../../lib/handlers/hops.js';
import { everySplit } from '../helpers/splits.js';

async function drain(parts: Buffer[], max: number): Promise<Buffer> {
  async function* source(): AsyncIterable<Uint8Array> {
    for (const p of parts) yield await Promise.resolve(p);
  }
  const out: Uint8Array[] = [];
  for await (const part of checkedHops(source(), max)) out.push(part);
  return Buffer.concat(out);
}

const message = (hops: number): Buffer =>
  Buffer.from(
    `${'Received: from a (b [192.0.2.1])\r\n\tby c; Mon, 1 Dec 2026\r\n'.repeat(hops)}Subject: x\r\n\r\nReceived: in the body\r\n`,
  );

describe('checkedHops (RFC 5321 §6.3)', () => {
  it('counts Received fields of the header section only, any case, folded or not', () => {
    expect(countReceived('Received: a\r\nRECEIVED : b\r\nX-Received: c\r\n received: d')).toBe(2);
  });

  it('passes a message within the limit unchanged, and fails one past it, whatever way it is cut', async () => {
    for (const pieces of everySplit(message(3))) expect((await drain(pieces, 3)).equals(message(3))).toBe(true);
    for (const pieces of everySplit(message(4))) await expect(drain(pieces, 3)).rejects.toThrow('Too many hops: routing loop detected');
  });

  it('checks a message without a body, and one whose header section is larger than it searches', async () => {
    await expect(drain([Buffer.from('Received: a\r\nReceived: b\r\n')], 1)).rejects.toMatchObject({ code: 554, enhanced: [5, 4, 6] });
    const long = Buffer.from(`X-Long: ${'x'.repeat(70 * 1024)}\r\n\r\nbody`);
    expect((await drain([long.subarray(0, 1000), long.subarray(1000)], 1)).equals(long)).toBe(true);
  });
});
