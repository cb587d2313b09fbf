/** The outbound client uses nodemailer's public API only: no underscore fields of its objects. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const OUTBOUND = fileURLToPath(new URL('../../lib/outbound/', import.meta.url));

describe("nodemailer's private fields", () => {
  it('are read nowhere in lib/outbound', () => {
    const found = readdirSync(OUTBOUND)
      .filter((name) => name.endsWith('.ts'))
      .flatMap((name) =>
        (readFileSync(`${OUTBOUND}${name}`, 'utf8').match(/\b_(?:supported|ehlo|envelope|auth|socket|destroyed)[A-Za-z]*/g) ?? []).map(
          (m) => `${name}: ${m}`,
        ),
      );
    expect(found).toEqual([]);
  });
});
