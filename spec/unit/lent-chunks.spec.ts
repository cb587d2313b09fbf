/**
 * The bookkeeping behind lent chunks: a read buffer goes back to the server only once no part of
 * it is queued or held by the reader, never when it is pinned, and never after the message ended.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LentChunks, type ReadBufferRecycler } from '../../lib/app/lent-chunks.js';

/** A recycler over four buffers, the last of which the server does not own. */
function buffers(): { backings: ArrayBuffer[]; recycled: ArrayBufferLike[]; recycler: ReadBufferRecycler; owned: Set<ArrayBufferLike> } {
  const backings = Array.from({ length: 4 }, () => new ArrayBuffer(16));
  const owned = new Set<ArrayBufferLike>(backings.slice(0, 3));
  const recycled: ArrayBufferLike[] = [];
  return { backings, recycled, owned, recycler: { owns: (b) => owned.has(b), recycle: (b) => recycled.push(b) } };
}

describe('LentChunks', () => {
  it('gives a buffer back once the reader has moved past its last part', async () => {
    const { backings, recycled, recycler } = buffers();
    const [a, b] = backings as [ArrayBuffer, ArrayBuffer];
    const lent = new LentChunks(recycler, () => undefined);
    lent.feed(Buffer.from(a, 0, 8));
    lent.feed(Buffer.from(a, 8, 8));
    lent.feed(Buffer.from(b, 0, 4));
    expect((await lent.next()).value).toHaveLength(8);
    expect(recycled).toEqual([]);
    await lent.next();
    // The second part of `a` is still held: nothing yet.
    expect(recycled).toEqual([]);
    await lent.next();
    expect(recycled).toEqual([a]);
    lent.end();
    expect(await lent.next()).toEqual({ value: undefined, done: true });
    // The message ended: `b`'s last part is not given back (what follows may share its memory).
    expect(recycled).toEqual([a]);
  });

  it('never gives back a pinned buffer, or one it does not own', async () => {
    const { backings, recycled, recycler } = buffers();
    const [a, , , foreign] = backings as [ArrayBuffer, ArrayBuffer, ArrayBuffer, ArrayBuffer];
    const lent = new LentChunks(recycler, () => undefined);
    lent.feed(Buffer.from(a, 0, 4), true);
    lent.feed(Buffer.from(a, 4, 4));
    lent.feed(Buffer.from(foreign, 0, 4));
    lent.feed(Buffer.from(foreign, 4, 4));
    for (let i = 0; i < 4; i++) await lent.next();
    expect(recycled).toEqual([]);
  });

  it('throws the failure at the next read, drops what was queued, and gives nothing back after it', async () => {
    const { backings, recycled, recycler } = buffers();
    const [a] = backings as [ArrayBuffer];
    const lent = new LentChunks(recycler, () => undefined);
    lent.feed(Buffer.from(a, 0, 4));
    lent.feed(Buffer.from(a, 4, 4));
    await lent.next();
    lent.fail(new Error('gone'));
    await expect(lent.next()).rejects.toThrow('gone');
    expect(recycled).toEqual([]);
  });

  it('says when the reader is behind, and asks for more as it reads', async () => {
    let asked = 0;
    const lent = new LentChunks(null, () => asked++);
    expect(lent.feed(Buffer.alloc(32 * 1024))).toBe(true);
    expect(lent.feed(Buffer.alloc(32 * 1024))).toBe(false);
    await lent.next();
    expect(asked).toBe(1);
  });

  it('hands a part straight to a reader that waits, and ends a waiting reader', async () => {
    const lent = new LentChunks(null, () => undefined);
    const first = lent.next();
    lent.feed(Buffer.from('abc'));
    expect(String((await first).value)).toBe('abc');
    const second = lent.next();
    lent.end();
    expect(await second).toEqual({ value: undefined, done: true });
  });

  it('drops the rest once the reader breaks off', async () => {
    const lent = new LentChunks(null, () => undefined);
    lent.feed(Buffer.from('abc'));
    await lent.return();
    expect(lent.dropping).toBe(true);
    expect(lent.feed(Buffer.from('def'))).toBe(true);
    expect(await lent.next()).toEqual({ value: undefined, done: true });
  });

  it('gives back only buffers no queued or held part is in, whatever the order of feeds and reads', async () => {
    type Op = { kind: 'feed'; buffer: number; pinned: boolean } | { kind: 'next' } | { kind: 'end' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('feed' as const), buffer: fc.integer({ min: 0, max: 3 }), pinned: fc.boolean() }),
      fc.constant({ kind: 'next' as const }),
      fc.constant({ kind: 'end' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const { backings, recycler, owned } = buffers();
        /** Parts queued or held by the reader, in the model. */
        const outstanding: Buffer[] = [];
        const pinned = new Set<ArrayBufferLike>();
        let ended = false;
        let held: Buffer | null = null;
        const giveBacks: ArrayBufferLike[] = [];
        const lent = new LentChunks(
          {
            owns: (b) => recycler.owns(b),
            recycle: (b) => {
              expect(ended).toBe(false);
              expect(pinned.has(b)).toBe(false);
              expect(owned.has(b)).toBe(true);
              expect(outstanding.some((p) => p.buffer === b)).toBe(false);
              giveBacks.push(b);
            },
          },
          () => undefined,
        );
        for (const o of ops) {
          if (o.kind === 'feed') {
            const part = Buffer.from(backings[o.buffer] as ArrayBuffer, 0, 4);
            if (o.pinned) pinned.add(part.buffer);
            if (!ended) outstanding.push(part);
            lent.feed(part, o.pinned);
          } else if (o.kind === 'end') {
            ended = true;
            lent.end();
          } else if (outstanding.length > (held === null ? 0 : 1) || ended) {
            // The reader moves on: the part it held is no longer outstanding.
            if (held !== null) outstanding.splice(outstanding.indexOf(held), 1);
            const result = await lent.next();
            held = result.done === true ? null : result.value;
            if (held !== null) expect(outstanding[0]).toBe(held);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
