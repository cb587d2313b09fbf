import { reply, type Reply } from './reply.js';

/**
 * The catalogue of every reply the protocol layer itself sends. Tests assert against these texts,
 * and `docs/replies.md` lists them; a reply that is not here is not sent by Sirocco.
 */
export const REPLIES = {
  // 2xx
  greeting: (host: string): Reply => reply(220, undefined, `${host} ESMTP Sirocco`),
  closing: (): Reply => reply(221, [2, 0, 0], 'Bye'),
  ok: (): Reply => reply(250, [2, 0, 0], 'Ok'),
  senderOk: (): Reply => reply(250, [2, 1, 0], 'Sender ok'),
  recipientOk: (): Reply => reply(250, [2, 1, 5], 'Recipient ok'),
  queued: (id: string, text?: string): Reply => reply(250, [2, 0, 0], text ?? `Ok: queued as ${id}`),
  cannotVerify: (): Reply =>
    reply(252, [2, 5, 0], 'Cannot VRFY user, but will accept message and attempt delivery'),
  help: (): Reply =>
    reply(214, [2, 0, 0], 'Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\nEnd of HELP'),
  // 3xx: RFC 2034 §4 puts no enhanced code on intermediate replies
  startData: (): Reply => reply(354, undefined, 'End data with <CR><LF>.<CR><LF>'),
  // 4xx
  shuttingDown: (): Reply => reply(421, [4, 3, 2], 'Service shutting down, closing connection'),
  idleTimeout: (): Reply => reply(421, [4, 4, 2], 'Idle timeout, closing connection'),
  tooManyErrors: (): Reply => reply(421, [4, 7, 0], 'Too many errors, closing connection'),
  tooManyConnections: (): Reply => reply(421, [4, 7, 0], 'Too many connections, try again later'),
  localError: (): Reply => reply(451, [4, 3, 0], 'Requested action aborted: local error in processing'),
  tooManyRecipients: (): Reply => reply(452, [4, 5, 3], 'Too many recipients'),
  // 5xx
  unrecognized: (): Reply => reply(500, [5, 5, 2], 'Command not recognized'),
  lineTooLong: (): Reply => reply(500, [5, 5, 2], 'Line too long'),
  bareLineFeed: (): Reply => reply(500, [5, 5, 2], 'Line must end with <CR><LF>'),
  invalidUtf8: (): Reply => reply(500, [5, 5, 2], 'Invalid UTF-8 in command'),
  controlCharacters: (): Reply => reply(501, [5, 5, 2], 'Control characters are not allowed in commands'),
  syntax: (usage: string): Reply => reply(501, [5, 5, 4], `Syntax: ${usage}`),
  badSenderSyntax: (why: string): Reply => reply(501, [5, 1, 7], `Bad sender address syntax: ${why}`),
  badRecipientSyntax: (why: string): Reply => reply(501, [5, 1, 3], `Bad recipient address syntax: ${why}`),
  badParameter: (why: string): Reply => reply(501, [5, 5, 4], why),
  notImplemented: (verb: string): Reply => reply(502, [5, 5, 1], `${verb} not implemented`),
  badSequence: (why: string): Reply => reply(503, [5, 5, 1], `Bad sequence of commands: ${why}`),
  messageTooBig: (): Reply => reply(552, [5, 3, 4], 'Message size exceeds fixed maximum message size'),
  nonAsciiAddress: (): Reply => reply(553, [5, 6, 7], 'Non-ASCII address requires SMTPUTF8'),
  bareLineEndingsInBody: (): Reply =>
    reply(554, [5, 6, 0], 'Message contains bare <CR> or <LF>; lines must end with <CR><LF>'),
  unknownParameter: (name: string): Reply => reply(555, [5, 5, 4], `${name} parameter not recognized`),
  notSmtp: (): Reply => reply(421, [4, 7, 0], 'This is an SMTP server, closing connection'),
} as const;
