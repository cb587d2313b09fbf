/** Queries over caught messages: what `find` and `waitFor` match, and how a query is named. */
import type { CaughtMessage } from './caught.js';

/**
 * A string (contained; for addresses: equal, ignoring case) or a regular expression.
 *
 * @example
 * ```ts
 * const subject: Matcher = /^Your order \d+/;
 * ```
 */
export type Matcher = string | RegExp;

/**
 * Which messages: every field given must match. A function is a query of its own.
 *
 * @example
 * ```ts
 * const query: InboxQuery = { to: 'bob@example.com', subject: /welcome/i, header: { 'x-mailer': 'shop' } };
 * ```
 */
export type InboxQuery =
  | ((message: CaughtMessage) => boolean)
  | {
      /** An envelope recipient. */
      readonly to?: Matcher;
      /** The envelope sender. */
      readonly from?: Matcher;
      /** The Subject. */
      readonly subject?: Matcher;
      /** The text body. */
      readonly text?: Matcher;
      /** Header values by name (case-insensitive). */
      readonly header?: Readonly<Record<string, Matcher>>;
      /** A tag: the `X-Tag` header, or `+tag` in a recipient's address. */
      readonly tag?: string;
    };

/** The query of a `waitFor` without one. */
export const ANY = (): boolean => true;

export function describeQuery(query: InboxQuery): string {
  if (typeof query === 'function') return `the predicate ${query.name || '(anonymous)'}`;
  return JSON.stringify(query, (_key, value: unknown) => (value instanceof RegExp ? value.toString() : value));
}

function matches(matcher: Matcher, value: string): boolean {
  return typeof matcher === 'string' ? value.includes(matcher) : matcher.test(value);
}

function addressMatches(matcher: Matcher, address: string): boolean {
  return typeof matcher === 'string' ? address.toLowerCase() === matcher.toLowerCase() : matcher.test(address);
}

/** Whether `message` has the tag: its X-Tag header, or `+tag@` in a recipient. */
export function tagged(message: CaughtMessage, tag: string): boolean {
  if (message.headers.get('x-tag') === tag) return true;
  const plus = `+${tag.toLowerCase()}@`;
  return message.rcptTos.some((r) => r.toLowerCase().includes(plus));
}

/** Whether `message` matches `query`. */
export function matchesQuery(message: CaughtMessage, query: InboxQuery): boolean {
  if (typeof query === 'function') return query(message);
  if (query.to !== undefined && !message.rcptTos.some((r) => addressMatches(query.to as Matcher, r))) return false;
  if (query.from !== undefined && !addressMatches(query.from, message.mailFrom)) return false;
  if (query.subject !== undefined && !matches(query.subject, message.subject)) return false;
  if (query.text !== undefined && !matches(query.text, message.text)) return false;
  for (const [name, matcher] of Object.entries(query.header ?? {})) {
    const value = message.headers.get(name.toLowerCase());
    if (value === undefined || !matches(matcher, value)) return false;
  }
  return query.tag === undefined || tagged(message, query.tag);
}
