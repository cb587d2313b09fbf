import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeXtext, parseNotify, parseOrcpt } from '../../lib/protocol/dsn.js';

/** xtext as RFC 3461 §4 writes it: "+", "=" and anything outside 33..126 as "+XX". */
function encodeXtext(text: string): string {
  return [...Buffer.from(text, 'latin1')]
    .map((b) =>
      b < 33 || b > 126 || b === 0x2b || b === 0x3d ? `+${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b),
    )
    .join('');
}

describe('xtext', () => {
  it('round-trips any printable text', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[\x20-\x7e]{0,60}$/), (text) => {
        expect(decodeXtext(encodeXtext(text), 'X')).toBe(text);
      }),
    );
  });

  it('refuses a control character once decoded, and lower-case or short hex', () => {
    expect(decodeXtext('a+0Db', 'ENVID')).toEqual({ error: 'ENVID holds a control character' });
    expect(decodeXtext('a+2b', 'ENVID')).toEqual({ error: 'ENVID is not valid xtext' });
    expect(decodeXtext('a+2', 'ENVID')).toEqual({ error: 'ENVID is not valid xtext' });
    expect(decodeXtext('a=b', 'ENVID')).toEqual({ error: 'ENVID is not valid xtext' });
  });
});

describe('NOTIFY and ORCPT', () => {
  it('take NEVER alone or a list of conditions', () => {
    expect(parseNotify('never')).toBe('NEVER');
    expect(parseNotify('DELAY,success')).toEqual(['DELAY', 'SUCCESS']);
    expect(parseNotify('NEVER,DELAY')).toEqual({ error: 'NOTIFY=NEVER must stand alone' });
    expect(parseNotify(true)).toEqual({ error: 'NOTIFY requires a value' });
  });

  it('split ORCPT into its type and decoded address', () => {
    expect(parseOrcpt('RFC822;a+2Bb@c.test')).toEqual({ type: 'rfc822', address: 'a+b@c.test' });
    expect(parseOrcpt(';a@b')).toEqual({ error: 'ORCPT must be addr-type;address' });
    expect(parseOrcpt('rfc822;')).toEqual({ error: 'ORCPT has no address' });
  });
});
