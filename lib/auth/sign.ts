/**
 * DKIM signing on the way out (RFC 6376; Ed25519 of RFC 8463) by mailauth: per-domain selectors
 * and keys, read from files or given, one signature per key of the From: domain (an RSA and an
 * Ed25519 key for one domain sign both). A key rotation is a change of configuration.
 */
import { mailauth } from './mailauth.js';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

/**
 * One signing key: the domain it signs for (d=), its selector (s=), and the key itself.
 *
 * @example
 * ```ts
 * const keys: DkimKey[] = [
 *   { domain: 'example.com', selector: 'rsa2026', keyFile: '/etc/sirocco/dkim/rsa2026.pem' },
 *   { domain: 'example.com', selector: 'ed2026', keyFile: '/etc/sirocco/dkim/ed2026.pem' },
 * ];
 * ```
 */
export interface DkimKey {
  /** The signing domain (d=): messages whose From: is this domain or one under it are signed. */
  readonly domain: string;
  /** The selector (s=): the key is published at `<selector>._domainkey.<domain>`. */
  readonly selector: string;
  /** The private key, PEM (RSA of at least 1024 bits, 2048 advised; or Ed25519). Or give `keyFile`. */
  readonly privateKey?: string | undefined;
  /** A file holding the private key, PEM; read when the signer is made. */
  readonly keyFile?: string | undefined;
  /** The header fields signed (h=). Default {@link DKIM_SIGNED_HEADERS}. */
  readonly headers?: readonly string[] | undefined;
  /** `header/body` canonicalization (c=). Default `relaxed/relaxed`. */
  readonly canonicalization?: 'relaxed/relaxed' | 'relaxed/simple' | 'simple/relaxed' | 'simple/simple' | undefined;
}

/**
 * The header fields signed by default: those a reader sees and a forwarder has no reason to change.
 *
 * @example
 * ```ts
 * const headers = [...DKIM_SIGNED_HEADERS, 'x-campaign'];
 * ```
 */
export const DKIM_SIGNED_HEADERS: readonly string[] = [
  'from',
  'sender',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'to',
  'cc',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'in-reply-to',
  'references',
  'list-id',
  'list-unsubscribe',
  'list-unsubscribe-post',
];

const CANONICALIZATIONS = ['relaxed/relaxed', 'relaxed/simple', 'simple/relaxed', 'simple/simple'];

/** A key ready to sign with. */
interface Loaded {
  readonly domain: string;
  readonly selector: string;
  readonly pem: string;
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  readonly headers: readonly string[];
  readonly canonicalization: string;
}

/** Loads and checks each key; throws a RangeError naming `field[i].name` for the first bad one. */
function load(keys: readonly DkimKey[], field: string): Loaded[] {
  if (!Array.isArray(keys)) throw new RangeError(`${field} must be a list of keys`);
  const list: readonly DkimKey[] = keys as readonly DkimKey[];
  return list.map((key: DkimKey, i) => {
    const at = `${field}[${i}]`;
    if (typeof key !== 'object' || key === null) throw new RangeError(`${at} must be an object`);
    if (typeof key.domain !== 'string' || !/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(key.domain))
      throw new RangeError(`${at}.domain must be a domain name, got ${JSON.stringify(key.domain)}`);
    if (typeof key.selector !== 'string' || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(key.selector))
      throw new RangeError(`${at}.selector must be a selector (letters, digits, - and _), got ${JSON.stringify(key.selector)}`);
    if ((key.privateKey === undefined) === (key.keyFile === undefined))
      throw new RangeError(`${at}: give privateKey or keyFile, one of them`);
    let pem: string;
    try {
      pem = key.privateKey ?? readFileSync(key.keyFile ?? '', 'utf8');
    } catch (err) {
      throw new RangeError(`${at}.keyFile cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    let algorithm: Loaded['algorithm'];
    try {
      const parsed = createPrivateKey(pem);
      if (parsed.asymmetricKeyType === 'ed25519') algorithm = 'ed25519-sha256';
      else if (parsed.asymmetricKeyType === 'rsa') {
        const bits = parsed.asymmetricKeyDetails?.modulusLength ?? 0;
        if (bits < 1024) throw new RangeError(`an RSA key of ${bits} bits is refused by receivers (at least 1024; 2048 advised)`);
        algorithm = 'rsa-sha256';
      } else throw new RangeError(`a ${parsed.asymmetricKeyType ?? 'unknown'} key cannot sign DKIM (RSA or Ed25519)`);
    } catch (err) {
      const which = key.privateKey === undefined ? 'keyFile' : 'privateKey';
      throw new RangeError(`${at}.${which}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const canonicalization = key.canonicalization ?? 'relaxed/relaxed';
    if (!CANONICALIZATIONS.includes(canonicalization))
      throw new RangeError(`${at}.canonicalization must be one of ${CANONICALIZATIONS.join(', ')}`);
    const headers = key.headers ?? DKIM_SIGNED_HEADERS;
    if (!Array.isArray(headers) || !headers.some((h) => typeof h === 'string' && h.toLowerCase() === 'from'))
      throw new RangeError(`${at}.headers must be a list of field names with from in it (RFC 6376 §5.4)`);
    return { domain: key.domain.toLowerCase(), selector: key.selector, pem, algorithm, headers, canonicalization };
  });
}

/** The domain of the first address of the From: field in a header section, lower case; `''` without one. */
export function fromDomain(head: string): string {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const field = /^from[ \t]*:(.*)$/im.exec(unfolded)?.[1] ?? '';
  const address = /<[^<>]*@([^<>\s]+)>/.exec(field)?.[1] ?? /@([^\s,;<>()"]+)/.exec(field)?.[1] ?? '';
  return address.toLowerCase().replace(/\.$/, '');
}

/**
 * Signs messages with the keys of their From: domain (a key of `example.com` signs mail from
 * `example.com` and `news.example.com`); a message from a domain without keys goes unsigned.
 *
 * @example
 * ```ts
 * const signer = new DkimSigner([{ domain: 'example.com', selector: 's1', keyFile: '/etc/dkim/s1.pem' }]);
 * const signed = await signer.sign(Buffer.from('From: me@example.com\r\nSubject: hi\r\n\r\nhello\r\n'));
 * ```
 */
export class DkimSigner {
  readonly #keys: Loaded[];

  /** Throws a RangeError naming the bad key and field (`field` names the setting in it). */
  constructor(keys: readonly DkimKey[], field = 'dkimKeys') {
    this.#keys = load(keys, field);
  }

  /** @internal The keys, loaded and checked: domain, selector, PEM and algorithm. */
  keys(): readonly { readonly domain: string; readonly selector: string; readonly pem: string; readonly algorithm: string }[] {
    return this.#keys;
  }

  /**
   * The DKIM-Signature fields for a message whose From: is in `domain`, CRLF-ended, to put on top
   * (one per key, in the order of the keys); `''` when no key applies. `message` is its bytes, or
   * a way to read them (once per key).
   */
  async signatures(message: Buffer | (() => Readable), domain: string): Promise<string> {
    const keys = this.#keys.filter((k) => domain === k.domain || domain.endsWith(`.${k.domain}`));
    if (keys.length === 0) return '';
    const { dkimSign } = await mailauth();
    const fields: string[] = [];
    for (const k of keys) {
      const signed = await dkimSign(Buffer.isBuffer(message) ? message : message(), {
        signingDomain: k.domain,
        selector: k.selector,
        privateKey: k.pem,
        headerList: [...k.headers],
        signatureData: [
          {
            signingDomain: k.domain,
            selector: k.selector,
            privateKey: k.pem,
            algorithm: k.algorithm,
            canonicalization: k.canonicalization,
          },
        ],
      });
      if (signed.errors.length > 0) throw signed.errors[0] as Error;
      fields.push(signed.signatures.replace(/\r?\n/g, '\r\n').replace(/(\r\n)+$/, ''));
    }
    // The last key's signature on top, as each signer in turn would have added it.
    return `${fields.reverse().join('\r\n')}\r\n`;
  }

  /** `message` with its signatures on top (itself when no key applies). */
  async sign(message: Buffer): Promise<Buffer> {
    const end = message.indexOf('\r\n\r\n');
    const head = message.subarray(0, end === -1 ? message.length : end).toString('latin1');
    const fields = await this.signatures(message, fromDomain(head));
    return fields === '' ? message : Buffer.concat([Buffer.from(fields), message]);
  }
}
