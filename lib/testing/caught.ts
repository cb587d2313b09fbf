/**
 * A message as a test inbox holds it: envelope, session, raw bytes and the parsed view
 * (mailparser's, reduced to what tests ask about).
 */
import type { ParsedMail } from 'mailparser';

/**
 * One attachment of a caught message.
 *
 * @example
 * ```ts
 * const pdf: CaughtAttachment | undefined = message.attachments.find((a) => a.contentType === 'application/pdf');
 * ```
 */
export interface CaughtAttachment {
  /** Its file name, when it has one. */
  readonly filename: string | undefined;
  /** Its MIME type, `application/pdf` say. */
  readonly contentType: string;
  /** Its bytes, decoded. */
  readonly content: Buffer;
}

/**
 * A message the inbox caught.
 *
 * @example
 * ```ts
 * const message: CaughtMessage = await controller.inbox.waitFor({ to: 'bob@example.com' });
 * expect(message.subject).toBe('Welcome');
 * expect(message.attachments[0]?.filename).toBe('invoice.pdf');
 * ```
 */
export interface CaughtMessage {
  /** The queue id the client was told in the 250. */
  readonly id: string;
  /** The envelope sender (`''` for the null sender). */
  readonly mailFrom: string;
  /** The envelope recipients. */
  readonly rcptTos: readonly string[];
  /** When it arrived. */
  readonly receivedAt: Date;
  /** Where it came from. */
  readonly session: {
    /** The client's address. */
    readonly remoteAddress: string;
    /** Its HELO/EHLO name. */
    readonly heloName: string;
    /** Whether the session was over TLS. */
    readonly secure: boolean;
    /** The authenticated user, if any. */
    readonly user: string | undefined;
  };
  /** The message as received. */
  readonly raw: Buffer;
  /** The Subject, decoded; `''` without one. */
  readonly subject: string;
  /** The From header's addresses. */
  readonly from: readonly string[];
  /** The To header's addresses. */
  readonly to: readonly string[];
  /** The Cc header's addresses. */
  readonly cc: readonly string[];
  /** The plain-text body (or the HTML's text when there is none). */
  readonly text: string;
  /** The HTML body, when there is one. */
  readonly html: string | undefined;
  /** Its attachments, in order. */
  readonly attachments: readonly CaughtAttachment[];
  /** Each header field's value as it appears, unfolded, by lower-case name (the first one when repeated). */
  readonly headers: ReadonlyMap<string, string>;
}

/** @internal The caught view of a parsed message. */
export function caughtMessage(
  parts: Pick<CaughtMessage, 'id' | 'mailFrom' | 'rcptTos' | 'receivedAt' | 'session' | 'raw'>,
  parsed: ParsedMail,
): CaughtMessage {
  const addresses = (field: ParsedMail['to']): string[] =>
    (field === undefined ? [] : Array.isArray(field) ? field : [field]).flatMap((a) => a.value.map((v) => v.address ?? ''));
  const headers = new Map<string, string>();
  for (const line of parsed.headerLines) {
    if (headers.has(line.key)) continue;
    const colon = line.line.indexOf(':');
    headers.set(
      line.key,
      line.line
        .slice(colon + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    );
  }
  return {
    ...parts,
    subject: parsed.subject ?? '',
    from: addresses(parsed.from),
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    text: parsed.text ?? '',
    html: parsed.html === false ? undefined : parsed.html,
    attachments: parsed.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
    headers,
  };
}
