/** Queue ids (lib/app/request.ts): drawn from blocks of random bytes, one block per 512 ids. */
import { describe, expect, it } from 'vitest';
import { newQueueId } from '../../lib/app/request.js';

describe('newQueueId', () => {
  it('gives 12 letters of Crockford base 32, all different, across several blocks', () => {
    const ids = Array.from({ length: 2000 }, () => newQueueId());
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
