/**
 * The lines of a session transcript, as the debug log shows them: commands as the client sent
 * them, except what would give a secret away. An AUTH command keeps its mechanism and loses its
 * initial response; every line of an AUTH exchange, and every 334 challenge, is redacted whole.
 * Message content never reaches a transcript: it is not read as command lines.
 */

/** What stands for redacted text. */
export const REDACTED = '[redacted]';

/** The longest piece of a line a transcript keeps; longer lines are cut and say how long they were. */
export const TRANSCRIPT_LINE_LIMIT = 512;

const AUTH_COMMAND = /^(AUTH[ \t]+[^ \t]+)[ \t]/i;

/**
 * A command line as the transcript shows it; `inExchange` for a line of an AUTH exchange (a
 * response to a 334 challenge).
 *
 * @example
 * ```ts
 * transcriptCommand(Buffer.from('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), false); // 'AUTH PLAIN [redacted]'
 * ```
 */
export function transcriptCommand(line: Buffer, inExchange: boolean): string {
  if (inExchange) return REDACTED;
  const text = shortened(line.toString('latin1', 0, TRANSCRIPT_LINE_LIMIT + 1), line.length);
  const auth = AUTH_COMMAND.exec(text);
  return auth === null ? text : `${auth[1] ?? 'AUTH'} ${REDACTED}`;
}

/**
 * A reply as the transcript shows it: its lines without their line ends, a 334 challenge's text
 * redacted.
 *
 * @example
 * ```ts
 * transcriptReply('334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+\r\n'); // '334 [redacted]'
 * ```
 */
export function transcriptReply(formatted: string): string {
  if (formatted.startsWith('334')) return `334 ${REDACTED}`;
  const text = formatted.endsWith('\r\n') ? formatted.slice(0, -2) : formatted;
  return shortened(text.slice(0, TRANSCRIPT_LINE_LIMIT + 1), text.length).replaceAll('\r\n', ' | ');
}

function shortened(text: string, length: number): string {
  return length > TRANSCRIPT_LINE_LIMIT ? `${text.slice(0, TRANSCRIPT_LINE_LIMIT)}… (${length} bytes)` : text;
}
