/**
 * What a session is given (its policy and the server's features) and the decisions it hands the
 * I/O layer. Types only.
 */
import type { Command, EsmtpParams } from './command.js';
import type { RcptDsn } from './dsn.js';
import type { Reply } from './reply.js';
import type { SaslMechanism } from './sasl.js';

export type MailCommand = Extract<Command, { verb: 'MAIL' }>;

/**
 * What the I/O layer does next. `reply`: send it. `close`: send the replies, then close.
 * `hello`, `mail`, `rcpt`: run the hook (the open transaction ended first, for `hello`), then tell
 * the session with `Session.hello`, `Session.mailAnswered`, `Session.rcptAnswered`.
 * `data`, `reset`, `startTls`: send the reply, then read the data / end the transaction / start
 * the TLS handshake (the transaction ended too). `auth`: run the SASL exchange. `bdat`: read a
 * chunk of `size` bytes into the transaction, then tell `Session.chunkEnded`. `skip`: read
 * `size` bytes and drop them (a BDAT refused still carries its chunk), then send the reply; with
 * `abort`, the transaction ended.
 */
export type Decision =
  | { readonly kind: 'reply' | 'data' | 'reset' | 'startTls'; readonly reply: Reply }
  | {
      readonly kind: 'close';
      readonly replies: readonly Reply[];
      /** The client asked to end (QUIT): nothing more is owed to it once the replies are sent. */
      readonly asked?: true;
    }
  | { readonly kind: 'hello'; readonly esmtp: boolean; readonly domain: string }
  | { readonly kind: 'mail'; readonly command: MailCommand }
  | { readonly kind: 'rcpt'; readonly address: string; readonly params: EsmtpParams; readonly dsn: RcptDsn | undefined }
  | { readonly kind: 'auth'; readonly mechanism: SaslMechanism; readonly initial: Buffer | undefined }
  | { readonly kind: 'bdat'; readonly size: number; readonly last: boolean }
  | { readonly kind: 'skip'; readonly size: number; readonly reply: Reply; readonly abort: boolean };

/** The settings a session decides by (the application's settings have them all). */
export interface SessionPolicy {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
  readonly maxLineLength: number;
  readonly maxBadCommands: number;
  readonly maxAuthFailures: number;
  readonly smtputf8: boolean;
  readonly requireTLS: boolean;
  readonly requireAuth: boolean;
  readonly allowInsecureAuth: boolean;
  readonly authMechanisms: readonly string[];
  readonly bareLineEndings: string;
  readonly strictSyntax: boolean;
  /** LMTP (RFC 2033): LHLO instead of HELO/EHLO. */
  readonly lmtp: boolean;
  /** CHUNKING and BINARYMIME (RFC 3030). */
  readonly chunking: boolean;
  /** DSN (RFC 3461). */
  readonly dsn: boolean;
}

/** What the server can do beyond the settings: TLS configured, an authenticator given. */
export interface SessionFeatures {
  readonly tls: boolean;
  readonly auth: boolean;
  /** Whether a client at this address may use XCLIENT and XFORWARD (`xclientFrom`). */
  readonly xclient?: (address: string) => boolean;
}
