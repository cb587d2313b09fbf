/**
 * Folder names for mailboxes: one folder per address in the Maildir handler's
 * `maildirPerRecipient` layout, found again by the POP3 store. Two spellings of one mailbox give
 * one folder, and two mailboxes never share one:
 *
 * - the address is canonical first: a quoted local part that needs no quotes loses them
 *   (`"alice"@example.com` is `alice@example.com`, RFC 5321 §4.1.2), the text is in Unicode's
 *   NFC form (`café` typed either way is one name), and it is in lower case;
 * - then escaped reversibly: `%`, `/`, `\`, control characters and a leading `.` become `%XX`
 *   (their UTF-8 bytes in hex), so `a/b@x` is `a%2Fb@x` and never the folder of `a_b@x`.
 *
 * A folder name is at most 255 bytes (the limit of Linux's file systems); an address whose name
 * would be longer has no folder, and the handler refuses it at RCPT.
 */

/** The longest folder name a file system takes, in bytes. */
export const MAX_FOLDER_BYTES = 255;

/** RFC 5322 atext, with UTF-8 (RFC 6532) beyond ASCII. */
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;

/**
 * An address in its canonical form: quotes dropped where the local part needs none, NFC, lower case.
 *
 * @example
 * ```ts
 * canonicalAddress('"Alice"@Example.COM'); // 'alice@example.com'
 * ```
 */
export function canonicalAddress(address: string): string {
  const at = address.lastIndexOf('@');
  let local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at);
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"')) {
    const text = local.slice(1, -1).replace(/\\(.)/gsu, '$1');
    const dotAtom = text.split('.').every((atom) => ATOM.test(atom));
    local = dotAtom ? text : `"${text.replace(/(["\\])/g, '\\$1')}"`;
  }
  return `${local}${domain}`.normalize('NFC').toLowerCase().normalize('NFC');
}

/**
 * The folder of an address's mailbox, or `undefined` when its name would pass 255 bytes.
 *
 * @example
 * ```ts
 * mailboxFolder('a/b@example.com'); // 'a%2Fb@example.com'
 * ```
 */
export function mailboxFolder(address: string): string | undefined {
  let name = '';
  for (const char of canonicalAddress(address)) {
    const code = char.codePointAt(0) ?? 0;
    const escape = char === '%' || char === '/' || char === '\\' || code < 0x20 || code === 0x7f || (name === '' && char === '.');
    name += escape ? escapeChar(char) : char;
  }
  if (name === '') name = '%';
  return Buffer.byteLength(name) > MAX_FOLDER_BYTES ? undefined : name;
}

/**
 * The canonical address a folder name stands for (the inverse of {@link mailboxFolder}).
 *
 * @example
 * ```ts
 * folderAddress('a%2Fb@example.com'); // 'a/b@example.com'
 * ```
 */
export function folderAddress(folder: string): string {
  if (folder === '%') return '';
  return decodeURIComponent(folder.replace(/%(?![0-9A-F]{2})/g, '%25'));
}

function escapeChar(char: string): string {
  return [...Buffer.from(char)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}
