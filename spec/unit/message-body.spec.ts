/**
 * A held body costs what its bytes cost, however small the pieces it came in: one-byte BDAT
 * chunks from a large read buffer, or from Node's small-buffer pool, are gathered into runs.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { BodyBudget } from '../../lib/app/body-budget.js';
import { MessageBody } from '../../lib/server/message-body.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const alive = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const MiB = 1024 * 1024;

describe('MessageBody held for a buffered handler', () => {
  it.each([
    ['views of one large read buffer', (): Buffer => LARGE.subarray(8, 9)],
    ['views of the small-buffer pool, one read per chunk', (): Buffer => Buffer.from('BDAT 1\r\nX').subarray(8, 9)],
  ])('keeps 300,000 one-byte parts (%s) in about 300 KB, and counts what it keeps', (_name, part) => {
    const budget = new BodyBudget(1024 * MiB);
    const before = alive();
    const body = new MessageBody(null, budget);
    for (let i = 0; i < 300_000; i++) body.write(part());
    const grown = alive() - before;
    expect(grown).toBeLessThan(4 * MiB);
    expect(budget.held).toBeGreaterThanOrEqual(300_000);
    expect(budget.held).toBeLessThan(1 * MiB);
    const joined = body.body();
    expect(joined?.length).toBe(300_000);
    expect(joined?.every((b) => b === 0x58)).toBe(true);
  });

  it('hands over a small body that came as one view of the small-buffer pool without copying it', () => {
    const budget = new BodyBudget(64 * MiB);
    const body = new MessageBody(null, budget);
    const read = Buffer.from('Subject: x\r\n\r\nhello\r\n.\r\n');
    // A slab of the pool: Buffer.poolSize bytes, 64 more where Node aligns its start (Node 26).
    expect(read.buffer.byteLength - Buffer.poolSize).toBeOneOf([0, 64]);
    const part = read.subarray(0, read.length - 3);
    body.write(part);
    const whole = body.body();
    expect(whole).toBe(part);
    expect(budget.held).toBe(part.length);
  });

  it('keeps parts in order when small and large parts alternate', () => {
    const budget = new BodyBudget(64 * MiB);
    const body = new MessageBody(null, budget);
    const parts = [
      Buffer.from('a'),
      Buffer.alloc(20_000, 'b'),
      Buffer.from('cc'),
      Buffer.from('d'),
      Buffer.alloc(9000, 'e'),
      Buffer.from('f'),
    ];
    for (const p of parts) body.write(p);
    expect(body.body()?.equals(Buffer.concat(parts))).toBe(true);
  });
});

const LARGE = Buffer.alloc(64 * 1024, 'X');
