import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalAddress, folderAddress, mailboxFolder, MAX_FOLDER_BYTES } from '../../lib/storage/folder-names.js';

describe('mailbox folder names', () => {
  it.each([
    ['"alice"@example.com', 'alice@example.com'],
    ['"Alice.B"@Example.COM', 'alice.b@example.com'],
    ['"a\\lice"@example.com', 'alice@example.com'],
    ['"a b"@example.com', '"a b"@example.com'],
    ['caf\u0065\u0301@example.com', 'caf\u00e9@example.com'],
  ])('canonical form of %s is %s', (address, canonical) => {
    expect(canonicalAddress(address)).toBe(canonical);
  });

  it('gives one folder to the spellings of one mailbox, and never one folder to two', () => {
    expect(mailboxFolder('"alice"@example.com')).toBe(mailboxFolder('alice@example.com'));
    expect(mailboxFolder('caf\u0065\u0301@example.com')).toBe(mailboxFolder('caf\u00e9@example.com'));
    expect(mailboxFolder('a/b@example.com')).toBe('a%2Fb@example.com');
    expect(mailboxFolder('a_b@example.com')).toBe('a_b@example.com');
    expect(mailboxFolder('a%2Fb@example.com')).toBe('a%252fb@example.com');
    expect(mailboxFolder('..')).toBe('%2E.');
    expect(mailboxFolder('.hidden@example.com')).toBe('%2Ehidden@example.com');
  });

  it('has no folder for an address whose name would pass 255 bytes', () => {
    const long = `${'x'.repeat(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}`;
    expect(Buffer.byteLength(long)).toBeGreaterThan(MAX_FOLDER_BYTES);
    expect(mailboxFolder(long)).toBeUndefined();
    expect(mailboxFolder(`${'x'.repeat(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.f`)).toBeDefined();
  });

  it('is reversible, stays in one path segment, and never names . or ..', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (address) => {
        const folder = mailboxFolder(address);
        if (folder === undefined) return;
        expect(folder).not.toMatch(/[/\\\0]/);
        expect(['.', '..', '']).not.toContain(folder);
        expect(folder.startsWith('.')).toBe(false);
        expect(folderAddress(folder)).toBe(canonicalAddress(address));
      }),
      { numRuns: 2000 },
    );
  });
});
