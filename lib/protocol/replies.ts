import { fixedReply, keepingLast, nameInReply, namedReply, namedReplyParts, reply, type Reply } from './reply.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Entry = (...args: any[]) => Reply;

/** `250 2.0.0 Ok: queued as ID`, formatted once but for the queue id. */
const QUEUED = namedReplyParts(250, [2, 0, 0], 'Ok: queued as ', [], 'queued');

/**
 * Gives every entry's replies the entry's name, which the logs carry when the reply is sent
 * (`reply=tooManyRecipients`). An entry without parameters always sends the same reply: it is
 * named once, and stays formatted once; an entry of one string keeps its last reply formatted.
 */
function named<T extends Record<string, Entry>>(entries: T): T {
  const out: Record<string, Entry> = {};
  for (const [name, make] of Object.entries(entries)) {
    if (make.length === 0) {
      const fixed = namedReply(make(), name);
      out[name] = () => fixed;
    } else if (make.length === 1) {
      const kept = keepingLast((text) => namedReply(make(text), name));
      out[name] = (arg: unknown) => (typeof arg === 'string' ? kept(arg) : namedReply(make(arg), name));
    } else {
      out[name] = (...args: unknown[]) => {
        const made = make(...args);
        return made.name === name ? made : namedReply(made, name);
      };
    }
  }
  return out as T;
}

/**
 * The catalogue of every reply the protocol layer itself sends. Tests assert against these texts,
 * and `docs/replies.md` lists them; a reply that is not here is not sent by Sirocco.
 *
 * @example
 * ```ts
 * formatReply(REPLIES.tooManyRecipients()); // '452 4.5.3 Too many recipients\r\n'
 * ```
 */
export const REPLIES = named({
  // 2xx
  /** Sent for: on connect (no enhanced code: RFC 2034 §4). */
  greeting: (host: string): Reply => reply(220, undefined, `${host} ESMTP Sirocco`),
  /** Sent for: QUIT. */
  closing: fixedReply(221, [2, 0, 0], 'Bye'),
  /** Sent for: NOOP, RSET. */
  ok: fixedReply(250, [2, 0, 0], 'Ok'),
  /** Sent for: MAIL accepted. */
  senderOk: fixedReply(250, [2, 1, 0], 'Sender ok'),
  /** Sent for: RCPT accepted. */
  recipientOk: fixedReply(250, [2, 1, 5], 'Recipient ok'),
  /** Sent for: message accepted (finish(text) replaces the text). */
  queued: (id: string, text?: string): Reply => (text === undefined ? nameInReply(QUEUED, id) : reply(250, [2, 0, 0], text)),
  /** Sent for: a BDAT chunk without LAST was read (RFC 3030 §2). */
  chunkReceived: (size: number): Reply => reply(250, [2, 0, 0], `${size} octets received`),
  /** Sent for: VRFY (RFC 5321 §3.5.3). */
  cannotVerify: fixedReply(252, [2, 5, 0], 'Cannot VRFY user, but will accept message and attempt delivery'),
  /** Sent for: HELP. */
  help: fixedReply(214, [2, 0, 0], 'Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\nEnd of HELP'),
  /** Sent for: STARTTLS accepted. */
  readyToStartTls: fixedReply(220, [2, 0, 0], 'Ready to start TLS'),
  /** Sent for: AUTH succeeded. */
  authSuccess: fixedReply(235, [2, 7, 0], 'Authentication successful'),
  // 3xx: RFC 2034 §4 puts no enhanced code on intermediate replies
  /** Sent for: an AUTH challenge; the text is the base64 of the mechanism's data (RFC 4954 §4). */
  authChallenge: (data: Buffer): Reply => reply(334, undefined, data.toString('base64')),
  /** Sent for: DATA. */
  startData: fixedReply(354, undefined, 'End data with <CR><LF>.<CR><LF>'),
  // 4xx
  /** Sent for: close(), once the connection is idle. */
  shuttingDown: fixedReply(421, [4, 3, 2], 'Service shutting down, closing connection'),
  /** Sent for: no byte from the client for idleTimeout ms. */
  idleTimeout: fixedReply(421, [4, 4, 2], 'Idle timeout, closing connection'),
  /** Sent for: maxBadCommands reached. */
  tooManyErrors: fixedReply(421, [4, 7, 0], 'Too many errors, closing connection'),
  /** Sent for: maxAuthFailures reached. */
  tooManyAuthFailures: fixedReply(421, [4, 7, 0], 'Too many authentication failures, closing connection'),
  /** Sent for: maxConnections reached. */
  tooManyConnections: fixedReply(421, [4, 7, 0], 'Too many connections, try again later'),
  /** Sent for: the onConnect hook failed with something other than SMTPError (then the connection closes). */
  serviceUnavailable: fixedReply(421, [4, 3, 0], 'Service not available, closing connection'),
  /** Sent for: a handler threw something other than SMTPError. */
  localError: fixedReply(451, [4, 3, 0], 'Requested action aborted: local error in processing'),
  /** Sent for: DATA or BDAT when the memory budget for held bodies (`bodyMemoryBudget`) is spent. */
  insufficientStorage: fixedReply(452, [4, 3, 1], 'Insufficient system storage, try again later'),
  /** Sent for: a client past `maxConnectionsPerIp`, `maxConnectionsPerNet` or `connectionRatePerIp` (then the connection closes). */
  clientLimit: fixedReply(421, [4, 7, 0], 'Too many connections from your address, try again later'),
  /** Sent for: AUTH from a client past `authFailuresPerIp` (RFC 4954 §6's temporary failure). */
  authLimit: fixedReply(454, [4, 7, 0], 'Too many authentication failures from your address, try again later'),
  /** Sent for: past maxRecipients (RFC 5321 §4.5.3.1.8). */
  tooManyRecipients: fixedReply(452, [4, 5, 3], 'Too many recipients'),
  // 5xx
  /** Sent for: a SASL response over 12288 bytes (RFC 4954 §4). */
  authLineTooLong: fixedReply(500, [5, 5, 6], 'Authentication exchange line is too long'),
  /** Sent for: unknown verb. */
  unrecognized: fixedReply(500, [5, 5, 2], 'Command not recognized'),
  /** Sent for: HELO or EHLO to an LMTP server (RFC 2033 §4.1). */
  useLhlo: fixedReply(500, [5, 5, 1], 'This is an LMTP server: greet with LHLO'),
  /** Sent for: command line over maxLineLength. */
  lineTooLong: fixedReply(500, [5, 5, 2], 'Line too long'),
  /** Sent for: command ended by bare LF, bareLineEndings: 'reject'. */
  bareLineFeed: fixedReply(500, [5, 5, 2], 'Line must end with <CR><LF>'),
  /** Sent for: bytes that are not UTF-8. */
  invalidUtf8: fixedReply(500, [5, 5, 2], 'Invalid UTF-8 in command'),
  /** Sent for: NUL, CR or another control character. */
  controlCharacters: fixedReply(501, [5, 5, 2], 'Control characters are not allowed in commands'),
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
  /** Sent for: a client answered an AUTH challenge with `*` (RFC 4954 §4). */
  authCancelled: fixedReply(501, [5, 7, 0], 'Authentication cancelled'),
  /** Sent for: a SASL response that is not base64 (RFC 4954 §4). */
  authBadBase64: fixedReply(501, [5, 5, 2], 'Cannot decode response'),
  /** Sent for: command out of order. */
  badSequence: (why: string): Reply => reply(503, [5, 5, 1], `Bad sequence of commands: ${why}`),
  /** Sent for: AUTH with a mechanism that is not offered (RFC 4954 §4). */
  authUnknownMechanism: fixedReply(504, [5, 5, 4], 'Unrecognized authentication type'),
  /** Sent for: a second AUTH after success (RFC 4954 §4). */
  alreadyAuthenticated: fixedReply(503, [5, 5, 1], 'Bad sequence of commands: already authenticated'),
  /** Sent for: STARTTLS when TLS is already up (RFC 3207 §4). */
  tlsAlreadyActive: fixedReply(503, [5, 5, 1], 'Bad sequence of commands: TLS already active'),
  /** Sent for: MAIL before STARTTLS under requireTLS (RFC 3207 §4). */
  tlsRequired: fixedReply(530, [5, 7, 0], 'Must issue a STARTTLS command first'),
  /** Sent for: XCLIENT or XFORWARD from a peer not in `xclientFrom`. */
  xclientDenied: fixedReply(550, [5, 7, 0], 'Insufficient authorization'),
  /** Sent for: MAIL … REQUIRETLS on a session without TLS (RFC 8689 offers it under TLS only). */
  requireTlsWithoutTls: fixedReply(530, [5, 7, 10], 'REQUIRETLS needs TLS: issue STARTTLS first'),
  /** Sent for: MAIL before AUTH under requireAuth (RFC 4954 §6). */
  authRequired: fixedReply(530, [5, 7, 0], 'Authentication required'),
  /** Sent for: AUTH without TLS when allowInsecureAuth is off (RFC 4954 §6). */
  encryptionRequired: fixedReply(538, [5, 7, 11], 'Encryption required for requested authentication mechanism'),
  /** Sent for: a malformed SASL message. */
  authMalformed: (why: string): Reply => reply(501, [5, 5, 2], why),
  /** Sent for: wrong credentials (RFC 4954 §6). */
  authInvalid: fixedReply(535, [5, 7, 8], 'Authentication credentials invalid'),
  /** Sent for: authenticate failed, or gave a verdict where SCRAM needs a secret (RFC 4954 §6). */
  authTemporary: fixedReply(454, [4, 7, 0], 'Temporary authentication failure'),
  /** Sent for: SIZE= or body over maxMessageSize. */
  messageTooBig: fixedReply(552, [5, 3, 4], 'Message size exceeds fixed maximum message size'),
  /** Sent for: 8-bit address without SMTPUTF8 (RFC 6531 §3.5). */
  nonAsciiAddress: fixedReply(553, [5, 6, 7], 'Non-ASCII address requires SMTPUTF8'),
  /** Sent for: bareLineEndings: 'reject'. */
  bareLineEndingsInBody: fixedReply(554, [5, 6, 0], 'Message contains bare <CR> or <LF>; lines must end with <CR><LF>'),
  /** Sent for: the onHelo hook returned false. */
  heloRefused: fixedReply(550, [5, 7, 1], 'HELO/EHLO name refused'),
  /** Sent for: a client that spoke before the greeting, under `greetDelay` (then the connection closes). */
  earlyTalker: fixedReply(554, [5, 5, 1], 'Protocol error: client spoke before the greeting'),
  /** Sent for: RCPT to a domain not handled here, by a client neither authenticated nor trusted (Relay, Deliver). */
  relayDenied: fixedReply(554, [5, 7, 1], 'Relay access denied'),
  /** Sent for: RCPT to an address literal, which the delivering handler does not send to. */
  addressLiteralRefused: fixedReply(550, [5, 1, 2], 'Address literals are not delivered; use a domain name'),
  /** Never sent: a hook threw `DropConnection`; the connection is dropped without a reply. */
  dropped: fixedReply(421, [4, 4, 2], 'Connection dropped'),
  /** Sent for: the onConnect hook returned false, instead of the greeting (RFC 5321 §3.1). */
  connectionRefused: fixedReply(554, [5, 7, 1], 'Access denied'),
  /** Sent for: unknown MAIL/RCPT parameter (RFC 5321 §4.1.1.11). */
  unknownParameter: (name: string): Reply => reply(555, [5, 5, 4], `${name} parameter not recognized`),
  /** Sent for: an HTTP request line or header. */
  notSmtp: fixedReply(421, [4, 7, 0], 'This is an SMTP server, closing connection'),
});
