import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLine } from '../../lib/protocol/command.js';
import { hasNonAscii, isDomain, parseMailbox, parsePath, parsePathIn } from '../../lib/protocol/address.js';

// The grammar as regular expressions, straight from RFC 5321 §4.1.2 (and RFC 6531 §3.3 for UTF-8):
// the scanning code must agree with them on every input.
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
const DOT_ATOM = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);
const DOT_ATOM_UTF8 = new RegExp(`^[${ATEXT}\\u0080-\\u{10FFFF}]+(?:\\.[${ATEXT}\\u0080-\\u{10FFFF}]+)*$`, 'u');
// Quoted-string (RFC 5321 §4.1.2; any non-ASCII character too under RFC 6531 §3.3).
const QUOTED = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$/;
const QUOTED_UTF8 = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const LABEL_UTF8 = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;

function referenceDomain(domain: string, utf8: boolean): boolean {
  if (domain === '' || Buffer.byteLength(domain) > 255) return false;
  const label = utf8 ? LABEL_UTF8 : LABEL;
  return domain.split('.').every((part) => part.length <= 63 && label.test(part));
}

// Strings built mostly from the characters that matter at the edges of the grammar.
const tricky = fc.string({
  unit: fc.constantFrom('a', 'Z', '0', '9', '-', '.', '.', '_', '!', '~', '@', ' ', '"', 'é', '日', '\u0301', '\ud83d'),
  maxLength: 24,
});

describe('address scanning agrees with the RFC 5321 grammar', () => {
  it('domains, with and without SMTPUTF8', () => {
    fc.assert(
      fc.property(tricky, fc.boolean(), (domain, utf8) => {
        expect(isDomain(domain, utf8)).toBe(referenceDomain(domain, utf8));
      }),
      { numRuns: 3000 },
    );
  });

  it('a label of 63 is a domain, of 64 is not; 255 bytes in all at most', () => {
    expect(isDomain(`${'a'.repeat(63)}.com`, false)).toBe(true);
    expect(isDomain(`${'a'.repeat(64)}.com`, false)).toBe(false);
    const long = Array.from({ length: 64 }, () => 'abc').join('.');
    expect(long.length).toBe(255);
    expect(isDomain(long, false)).toBe(true);
    expect(isDomain(`${long}a`, false)).toBe(false);
    expect(parseMailbox(`a@${long}`, false)).toEqual({ address: `a@${long}`, utf8: false });
    expect(parseMailbox(`a@${long}a`, false)).toEqual({ error: 'bad domain' });
  });

  it('dot-atom local parts, with and without SMTPUTF8', () => {
    fc.assert(
      fc.property(tricky, fc.boolean(), (local, utf8) => {
        fc.pre(!local.startsWith('"') && !local.includes('@'));
        const expected = (utf8 ? DOT_ATOM_UTF8 : DOT_ATOM).test(local) && Buffer.byteLength(local) <= 64;
        expect('address' in parseMailbox(`${local}@example.com`, utf8)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('whole mailboxes, checked in place: agree with the grammar for the local part and the domain cut apart', () => {
    const part = fc.oneof(tricky, fc.constantFrom('"a b"', '"a\\"b"', '[127.0.0.1]', 'a'.repeat(64), 'b'.repeat(65)));
    fc.assert(
      fc.property(part, part, fc.boolean(), (local, domain, utf8) => {
        const mailbox = `${local}@${domain}`;
        const at = mailbox.lastIndexOf('@');
        const [l, d] = [mailbox.slice(0, at), mailbox.slice(at + 1)];
        const quoted = (utf8 ? QUOTED_UTF8 : QUOTED).test(l);
        const localOk = (quoted || (utf8 ? DOT_ATOM_UTF8 : DOT_ATOM).test(l)) && Buffer.byteLength(l) <= 64;
        const domainOk = referenceDomain(d, utf8) || d === '[127.0.0.1]';
        expect('address' in parseMailbox(mailbox, utf8)).toBe(at > 0 && localOk && domainOk);
      }),
      { numRuns: 3000 },
    );
  });

  it('a path read in place, within a longer line, parses as the same path cut out of it', () => {
    const path = fc.oneof(
      tricky.map((t) => `<${t}>`),
      fc.constantFrom('<>', '<Postmaster>', '<@a.test,@b.test:x@y.test>', '<"a b"@c.test>', '<x@[127.0.0.1]>'),
    );
    const options = fc.record({ allowNull: fc.boolean(), allowPostmaster: fc.boolean(), utf8: fc.boolean() });
    fc.assert(
      fc.property(tricky, path, tricky, options, (before, text, after, opts) => {
        const line = `${before}${text}${after}`;
        expect(parsePathIn(line, before.length, before.length + text.length, opts)).toEqual(parsePath(text, opts));
      }),
      { numRuns: 3000 },
    );
  });

  it('hasNonAscii', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 16 }), (text) => {
        expect(hasNonAscii(text)).toBe([...text].some((c) => (c.codePointAt(0) ?? 0) > 0x7f));
      }),
    );
  });
});

describe('decodeLine', () => {
  it('agrees with a strict UTF-8 decode followed by the control-character check', () => {
    const strict = new TextDecoder('utf-8', { fatal: true });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const line = Buffer.from(bytes);
        const got = decodeLine(line);
        let text: string | undefined;
        try {
          text = strict.decode(line);
        } catch {
          text = undefined;
        }
        const control = text !== undefined && [...text].some((c) => c < ' ' || c === '\x7f');
        if (text === undefined) expect(typeof got === 'string' ? 0 : got.error.code).toBe(500);
        else if (control) expect(typeof got === 'string' ? 0 : got.error.code).toBe(501);
        else expect(got).toBe(text);
      }),
      { numRuns: 3000 },
    );
  });
});
