/** The nearest known setting name to a mistyped one. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { editDistance, nearestName } from '../../lib/app/setting-names.js';

const KNOWN = ['hostname', 'maxMessageSize', 'maxRecipients', 'idleTimeout', 'lmtp', 'dsn', 'tls'];

describe('nearestName', () => {
  it.each([
    ['hostnam', 'hostname'],
    ['hsotname', 'hostname'],
    ['MAXMESSAGESIZE', 'maxMessageSize'],
    ['maxRecipient', 'maxRecipients'],
    ['lmpt', 'lmtp'],
    ['tsl', 'tls'],
  ])('takes %s for %s', (typed, meant) => {
    expect(nearestName(typed, KNOWN)).toBe(meant);
  });

  it.each(['domain', 'queueDir', 'ab', 'x'])('suggests nothing for %s, which is far from every name', (name) => {
    expect(nearestName(name, KNOWN)).toBeUndefined();
  });
});

describe('editDistance', () => {
  it('counts inserts, deletes, replaces and swaps', () => {
    expect(editDistance('kitten', 'sitting', 5)).toBe(3);
    expect(editDistance('ab', 'ba', 5)).toBe(1);
    expect(editDistance('', 'abc', 5)).toBe(3);
  });

  it('is symmetric, zero only for equal strings, and stops at limit + 1', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
        const d = editDistance(a, b, 30);
        expect(editDistance(b, a, 30)).toBe(d);
        expect(d === 0).toBe(a === b);
        expect(editDistance(a, b, 2)).toBe(Math.min(d, 3));
      }),
      { numRuns: 300 },
    );
  });
});
