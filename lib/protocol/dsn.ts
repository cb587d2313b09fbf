/**
 * Delivery Status Notification parameters (RFC 3461): RET and ENVID on MAIL, NOTIFY and ORCPT on
 * RCPT, with xtext decoding (§4). Pure: a parameter's value in, a typed value or an error text out.
 */

/**
 * What MAIL asked for notifications (RFC 3461 §4.3, §4.4).
 *
 * @example
 * ```ts
 * const { ret, envid } = this.request.envelope.dsn ?? {}; // ret: 'FULL' | 'HDRS' | undefined
 * ```
 */
export interface MailDsn {
  /** RET: return the full message or its headers only in a failure notice. */
  readonly ret: 'FULL' | 'HDRS' | undefined;
  /** ENVID, xtext-decoded: the sender's own id for this transaction. */
  readonly envid: string | undefined;
}

/**
 * One NOTIFY condition (RFC 3461 §4.1).
 *
 * @example
 * ```ts
 * const wantsFailure = (n: RcptDsn['notify']) => n === undefined || (n !== 'NEVER' && n.includes('FAILURE' satisfies NotifyCondition));
 * ```
 */
export type NotifyCondition = 'SUCCESS' | 'FAILURE' | 'DELAY';

/**
 * What one RCPT asked for notifications (RFC 3461 §4.1, §4.2).
 *
 * @example
 * ```ts
 * const dsn = this.request.envelope.rcptDsn[0];
 * if (dsn?.notify === 'NEVER') console.log('no bounce wanted');
 * ```
 */
export interface RcptDsn {
  /** NOTIFY: `'NEVER'`, or the conditions to notify on; `undefined` when absent (the default applies). */
  readonly notify: 'NEVER' | readonly NotifyCondition[] | undefined;
  /** ORCPT, its address xtext-decoded: the recipient as the original sender gave it. */
  readonly orcpt: OriginalRecipient | undefined;
}

/**
 * ORCPT's value (RFC 3461 §4.2).
 *
 * @example
 * ```ts
 * const original: OriginalRecipient = { type: 'rfc822', address: 'a@b.example' };
 * ```
 */
export interface OriginalRecipient {
  /** The address type, lower-cased: `rfc822`, or `utf-8` (RFC 6533). */
  readonly type: string;
  /** The address, xtext-decoded. */
  readonly address: string;
}

// RFC 3461 §4: xchar is any printable ASCII but "+" and "="; "+" introduces two upper-case hex digits.
const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;

/** Decodes xtext; an error text for malformed xtext or a control character once decoded. */
export function decodeXtext(value: string, name: string): string | { readonly error: string } {
  if (!XTEXT.test(value)) return { error: `${name} is not valid xtext` };
  const decoded = value.replace(/\+([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  if (CONTROL.test(decoded)) return { error: `${name} holds a control character` };
  return decoded;
}

/** RET=FULL|HDRS. */
export function parseRet(value: string | true): MailDsn['ret'] | { readonly error: string } {
  const upper = value === true ? '' : value.toUpperCase();
  return upper === 'FULL' || upper === 'HDRS' ? upper : { error: 'RET must be FULL or HDRS' };
}

/** ENVID=xtext, at most 100 characters (RFC 3461 §4.4). */
export function parseEnvid(value: string | true): string | { readonly error: string } {
  if (value === true || value.length > 100) return { error: 'ENVID must be 1 to 100 characters of xtext' };
  return decodeXtext(value, 'ENVID');
}

/** NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1). */
export function parseNotify(value: string | true): RcptDsn['notify'] | { readonly error: string } {
  if (value === true) return { error: 'NOTIFY requires a value' };
  const words = value.toUpperCase().split(',');
  if (words.length === 1 && words[0] === 'NEVER') return 'NEVER';
  const conditions: NotifyCondition[] = [];
  for (const word of words) {
    if (word === 'NEVER') return { error: 'NOTIFY=NEVER must stand alone' };
    if (word !== 'SUCCESS' && word !== 'FAILURE' && word !== 'DELAY') return { error: `NOTIFY value ${word} is unknown` };
    if (conditions.includes(word)) return { error: `NOTIFY names ${word} twice` };
    conditions.push(word);
  }
  return conditions;
}

/** ORCPT=addr-type;xtext, at most 500 characters (RFC 3461 §4.2). */
export function parseOrcpt(value: string | true): RcptDsn['orcpt'] | { readonly error: string } {
  if (value === true || value.length > 500) return { error: 'ORCPT must be addr-type;address, at most 500 characters' };
  const semicolon = value.indexOf(';');
  const type = value.slice(0, semicolon);
  if (semicolon <= 0 || !ATOM.test(type)) return { error: 'ORCPT must be addr-type;address' };
  const address = decodeXtext(value.slice(semicolon + 1), 'ORCPT');
  if (typeof address !== 'string') return address;
  if (address === '') return { error: 'ORCPT has no address' };
  return { type: type.toLowerCase(), address };
}
