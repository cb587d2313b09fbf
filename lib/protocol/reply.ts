/**
 * SMTP replies as values: a code, an optional enhanced status code (RFC 3463) and text lines.
 * One formatter turns them into wire bytes; one error class carries them out of user code.
 */

/**
 * An RFC 3463 enhanced status code, such as `[5, 7, 1]` for "delivery not authorized".
 *
 * @example
 * ```ts
 * const notRelaying: EnhancedCode = [5, 7, 1];
 * throw new SMTPError(550, notRelaying, 'not relaying to that domain');
 * ```
 */
export type EnhancedCode = readonly [klass: 2 | 4 | 5, subject: number, detail: number];

/**
 * One SMTP reply.
 *
 * @example
 * ```ts
 * const reply: Reply = { code: 250, enhanced: [2, 0, 0], lines: ['Ok'] };
 * ```
 */
export interface Reply {
  /** The three-digit reply code (RFC 5321 §4.2). */
  readonly code: number;
  /** The enhanced status code, sent before the text of every line (RFC 2034 §4). */
  readonly enhanced?: EnhancedCode | undefined;
  /** The text, one entry per line; at least one. */
  readonly lines: readonly string[];
  /** The catalogue entry it came from (`REPLIES.tooManyRecipients` → `tooManyRecipients`), logged as `reply`. */
  readonly name?: string | undefined;
}

/** Builds a reply; `text` may hold several lines separated by `\n`. */
export function reply(code: number, enhanced: EnhancedCode | undefined, text: string): Reply {
  return { code, enhanced, lines: text.includes('\n') ? text.split('\n') : [text] };
}

/** Where a reply that never changes keeps its wire form. */
const WIRE = Symbol('wire');

/**
 * A reply that never changes, built and formatted once: the catalogue hands out the same frozen
 * object each time, and {@link formatReply} returns its stored wire form.
 */
export function fixedReply(code: number, enhanced: EnhancedCode | undefined, text: string): () => Reply {
  const r = reply(code, enhanced, text);
  const wire = formatReply(r);
  const fixed = Object.freeze(Object.defineProperty(r, WIRE, { value: wire }));
  return () => fixed;
}

/**
 * The parts of replies made often from one fixed text and one name (the EHLO reply: `host greets
 * client`, then the extension lines; `Ok: queued as ID`), formatted once: see {@link nameInReply}.
 */
export interface NamedReplyParts {
  readonly code: number;
  readonly enhanced: EnhancedCode | undefined;
  /** The catalogue entry the replies come from, if any. */
  readonly name: string | undefined;
  /** The first line's text before the name. */
  readonly textHead: string;
  /** The lines after the first. */
  readonly rest: readonly string[];
  /** The wire form before the name: `250-host greets `. */
  readonly wireHead: string;
  /** The wire form after the name: the first line's end and every other line. */
  readonly wireTail: string;
}

/** Formats the fixed parts of replies `code [enhanced] textHead<name>` followed by `rest`, once. */
export function namedReplyParts(
  code: number,
  enhanced: EnhancedCode | undefined,
  textHead: string,
  rest: readonly string[] = [],
  name?: string,
): NamedReplyParts {
  const prefix = enhanced === undefined ? '' : `${enhanced[0]}.${enhanced[1]}.${enhanced[2]} `;
  const tail = rest.length === 0 ? '' : formatReply({ code, enhanced, lines: rest });
  return {
    code,
    enhanced,
    name,
    textHead,
    rest,
    wireHead: `${code}${rest.length === 0 ? ' ' : '-'}${prefix}${sanitizeReplyText(textHead)}`,
    wireTail: `\r\n${tail}`,
  };
}

/**
 * A reply made of fixed parts and one name: its wire form is the name between two strings
 * formatted once, and its lines are made only when asked for (a log, a test).
 */
class PartsReply implements Reply {
  readonly code: number;
  readonly enhanced: EnhancedCode | undefined;
  readonly name: string | undefined;
  readonly [WIRE]: string;
  readonly #parts: NamedReplyParts;
  readonly #name: string;

  constructor(parts: NamedReplyParts, name: string) {
    this.code = parts.code;
    this.enhanced = parts.enhanced;
    this.name = parts.name;
    this.#parts = parts;
    this.#name = name;
    this[WIRE] = parts.wireHead + sanitizeReplyText(name) + parts.wireTail;
  }

  get lines(): readonly string[] {
    return [this.#parts.textHead + this.#name, ...this.#parts.rest];
  }
}

/** The reply of {@link namedReplyParts} for `name`: one small object and the wire string per call. */
export function nameInReply(parts: NamedReplyParts, name: string): Reply {
  return new PartsReply(parts, name);
}

/** The same reply carrying its catalogue name; a fixed reply stays fixed (frozen, formatted once). */
export function namedReply(r: Reply, name: string): Reply {
  const wire = (r as { [WIRE]?: string })[WIRE];
  const named = { code: r.code, enhanced: r.enhanced, lines: r.lines, name };
  return wire === undefined ? named : Object.freeze(Object.defineProperty(named, WIRE, { value: wire }));
}

/**
 * Replies made from one string, keeping the last one made, formatted and frozen: the same string
 * (the server's own host name, in the greeting and the HELO reply) gets the same object.
 */
export function keepingLast(make: (text: string) => Reply): (text: string) => Reply {
  let lastText: string | undefined;
  let last: Reply | undefined;
  return (text) => {
    if (text !== lastText || last === undefined) {
      const r = make(text);
      last = Object.freeze(
        Object.defineProperty({ code: r.code, enhanced: r.enhanced, lines: r.lines, name: r.name }, WIRE, { value: formatReply(r) }),
      );
      lastText = text;
    }
    return last;
  };
}

/**
 * Formats a reply for the wire: `250-first\r\n250 last\r\n`, the enhanced code on every line.
 * Line breaks and other control characters inside the text are replaced, so user text can never
 * inject a reply line of its own.
 *
 * @example
 * ```ts
 * formatReply({ code: 250, enhanced: [2, 0, 0], lines: ['first', 'last'] });
 * // '250-2.0.0 first\r\n250 2.0.0 last\r\n'
 * ```
 */
export function formatReply(r: Reply): string {
  const wire = (r as { [WIRE]?: string })[WIRE];
  if (wire !== undefined) return wire;
  const e = r.enhanced;
  const prefix = e === undefined ? '' : `${e[0]}.${e[1]}.${e[2]} `;
  const lines = r.lines.length === 0 ? [''] : r.lines;
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? ' ' : '-';
    out += `${r.code}${sep}${prefix}${sanitizeReplyText(lines[i] ?? '')}\r\n`;
  }
  return out;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** Reply text with line breaks and other control characters replaced by spaces. */
export function sanitizeReplyText(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROL, ' ') : text;
}

/**
 * Options of {@link SMTPError}.
 *
 * @example
 * ```ts
 * throw new SMTPError(451, [4, 3, 0], 'try again later', { logMessage: 'database down', cause: err } satisfies SMTPErrorOptions);
 * ```
 */
export interface SMTPErrorOptions {
  /** What the server logs instead of the client's text (the client never sees it). */
  readonly logMessage?: string;
  /** The underlying error, kept for the log. */
  readonly cause?: unknown;
}

/**
 * The one error a handler throws to answer with a chosen SMTP reply. Anything else a handler
 * throws is logged and answered `451 4.3.0`.
 *
 * @example
 * ```ts
 * throw new SMTPError(550, [5, 7, 1], 'not relaying to that domain', {
 *   logMessage: `refused rcpt ${address}`,
 * });
 * ```
 */
export class SMTPError extends Error {
  /** The reply code, 400 to 599. */
  readonly code: number;
  /** The enhanced status code; its class must match the reply code's first digit. */
  readonly enhanced: EnhancedCode | undefined;
  /** What the log shows; defaults to the client's text. */
  readonly logMessage: string;

  constructor(code: number, enhanced: EnhancedCode | undefined, message: string, options: SMTPErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (!Number.isInteger(code) || code < 400 || code > 599) {
      throw new RangeError(`SMTPError: code must be an integer from 400 to 599, got ${String(code)}`);
    }
    if (enhanced !== undefined) {
      const [klass, subject, detail] = enhanced;
      if (klass !== Math.floor(code / 100)) {
        throw new RangeError(`SMTPError: enhanced code class ${String(klass)} does not match reply code ${code}`);
      }
      if (!isCodePart(subject) || !isCodePart(detail)) {
        throw new RangeError(`SMTPError: enhanced code parts must be integers from 0 to 999, got ${enhanced.join('.')}`);
      }
    }
    this.name = 'SMTPError';
    this.code = code;
    this.enhanced = enhanced;
    this.logMessage = options.logMessage ?? message;
  }

  /** The reply this error answers with. */
  toReply(): Reply {
    return reply(this.code, this.enhanced, this.message);
  }

  /**
   * An error that answers with a catalogue reply, for handlers that refuse the way Sirocco itself
   * does without copying its text.
   *
   * @example
   * ```ts
   * throw SMTPError.from(REPLIES.localError(), { logMessage: 'disk full', cause: err });
   * ```
   */
  static from(r: Reply, options: SMTPErrorOptions = {}): SMTPError {
    return new SMTPError(r.code, r.enhanced, r.lines.join('\n'), options);
  }
}

function isCodePart(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 999;
}
