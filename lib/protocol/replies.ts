import { reply, type Reply } from './reply.js';

/**
 * The catalogue of every reply the protocol layer itself sends. Tests assert against these texts,
 * and `docs/replies.md` lists them; a reply that is not here is not sent by Sirocco.
 */
export const REPLIES = {
  // 2xx
  /** Sent for: on connect (no enhanced code: RFC 2034 §4). */
  greeting: (host: string): Reply => reply(220, undefined, `${host} ESMTP Sirocco`),
  /** Sent for: QUIT. */
  closing: (): Reply => reply(221, [2, 0, 0], 'Bye'),
  /** Sent for: NOOP, RSET. */
  ok: (): Reply => reply(250, [2, 0, 0], 'Ok'),
  /** Sent for: MAIL accepted. */
  senderOk: (): Reply => reply(250, [2, 1, 0], 'Sender ok'),
  /** Sent for: RCPT accepted. */
  recipientOk: (): Reply => reply(250, [2, 1, 5], 'Recipient ok'),
  /** Sent for: message accepted (finish(text) replaces the text). */
  queued: (id: string, text?: string): Reply => reply(250, [2, 0, 0], text ?? `Ok: queued as ${id}`),
  /** Sent for: VRFY (RFC 5321 §3.5.3). */
  cannotVerify: (): Reply =>
    reply(252, [2, 5, 0], 'Cannot VRFY user, but will accept message and attempt delivery'),
  /** Sent for: HELP. */
  help: (): Reply =>
    reply(214, [2, 0, 0], 'Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\nEnd of HELP'),
  // 3xx: RFC 2034 §4 puts no enhanced code on intermediate replies
  /** Sent for: DATA. */
  startData: (): Reply => reply(354, undefined, 'End data with <CR><LF>.<CR><LF>'),
  // 4xx
  /** Sent for: close(), once the connection is idle. */
  shuttingDown: (): Reply => reply(421, [4, 3, 2], 'Service shutting down, closing connection'),
  /** Sent for: no byte from the client for idleTimeout ms. */
  idleTimeout: (): Reply => reply(421, [4, 4, 2], 'Idle timeout, closing connection'),
  /** Sent for: maxBadCommands reached. */
  tooManyErrors: (): Reply => reply(421, [4, 7, 0], 'Too many errors, closing connection'),
  /** Sent for: maxConnections reached. */
  tooManyConnections: (): Reply => reply(421, [4, 7, 0], 'Too many connections, try again later'),
  /** Sent for: a handler threw something other than SMTPError. */
  localError: (): Reply => reply(451, [4, 3, 0], 'Requested action aborted: local error in processing'),
  /** Sent for: past maxRecipients (RFC 5321 §4.5.3.1.8). */
  tooManyRecipients: (): Reply => reply(452, [4, 5, 3], 'Too many recipients'),
  // 5xx
  /** Sent for: unknown verb. */
  unrecognized: (): Reply => reply(500, [5, 5, 2], 'Command not recognized'),
  /** Sent for: command line over maxLineLength. */
  lineTooLong: (): Reply => reply(500, [5, 5, 2], 'Line too long'),
  /** Sent for: command ended by bare LF, bareLineEndings: 'reject'. */
  bareLineFeed: (): Reply => reply(500, [5, 5, 2], 'Line must end with <CR><LF>'),
  /** Sent for: bytes that are not UTF-8. */
  invalidUtf8: (): Reply => reply(500, [5, 5, 2], 'Invalid UTF-8 in command'),
  /** Sent for: NUL, CR or another control character. */
  controlCharacters: (): Reply => reply(501, [5, 5, 2], 'Control characters are not allowed in commands'),
  /** Sent for: malformed command. */
  syntax: (usage: string): Reply => reply(501, [5, 5, 4], `Syntax: ${usage}`),
  /** Sent for: MAIL path malformed. */
  badSenderSyntax: (why: string): Reply => reply(501, [5, 1, 7], `Bad sender address syntax: ${why}`),
  /** Sent for: RCPT path malformed, or <>. */
  badRecipientSyntax: (why: string): Reply => reply(501, [5, 1, 3], `Bad recipient address syntax: ${why}`),
  /** Sent for: a known ESMTP parameter with a bad value, or a duplicate. */
  badParameter: (why: string): Reply => reply(501, [5, 5, 4], why),
  /** Sent for: EXPN; STARTTLS and AUTH until they are configured. */
  notImplemented: (verb: string): Reply => reply(502, [5, 5, 1], `${verb} not implemented`),
  /** Sent for: command out of order. */
  badSequence: (why: string): Reply => reply(503, [5, 5, 1], `Bad sequence of commands: ${why}`),
  /** Sent for: SIZE= or body over maxMessageSize. */
  messageTooBig: (): Reply => reply(552, [5, 3, 4], 'Message size exceeds fixed maximum message size'),
  /** Sent for: 8-bit address without SMTPUTF8 (RFC 6531 §3.5). */
  nonAsciiAddress: (): Reply => reply(553, [5, 6, 7], 'Non-ASCII address requires SMTPUTF8'),
  /** Sent for: bareLineEndings: 'reject'. */
  bareLineEndingsInBody: (): Reply =>
    reply(554, [5, 6, 0], 'Message contains bare <CR> or <LF>; lines must end with <CR><LF>'),
  /** Sent for: unknown MAIL/RCPT parameter (RFC 5321 §4.1.1.11). */
  unknownParameter: (name: string): Reply => reply(555, [5, 5, 4], `${name} parameter not recognized`),
  /** Sent for: an HTTP request line or header. */
  notSmtp: (): Reply => reply(421, [4, 7, 0], 'This is an SMTP server, closing connection'),
} as const;
