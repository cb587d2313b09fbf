/**
 * The SASL layer's values (RFC 4954): the mechanisms, what the application's `authenticate` is
 * given and answers, and the steps of an exchange, with the helpers every mechanism uses. Pure.
 */
import type { Reply } from './reply.js';
import { REPLIES } from './replies.js';

/**
 * The SASL mechanisms Sirocco implements, for the `authMechanisms` setting.
 *
 * @example
 * ```ts
 * new Application(Inbound, { tls: { key, cert }, authenticate, authMechanisms: [...SASL_MECHANISMS] });
 * ```
 */
export const SASL_MECHANISMS = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2', 'SCRAM-SHA-256'] as const;
/**
 * One of {@link SASL_MECHANISMS}.
 *
 * @example
 * ```ts
 * const offered: SaslMechanism[] = ['SCRAM-SHA-256', 'PLAIN'];
 * new Application(Inbound, { tls: { key, cert }, authenticate, authMechanisms: offered });
 * ```
 */
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/**
 * PLAIN and LOGIN: the password itself crossed the (TLS-protected) connection.
 *
 * @example
 * ```ts
 * if (credentials.mechanism === 'PLAIN' || credentials.mechanism === 'LOGIN')
 *   return users.check(credentials.username, credentials.password);
 * ```
 */
export interface PasswordCredentials {
  /** Which mechanism the client used. */
  readonly mechanism: 'PLAIN' | 'LOGIN';
  /** The authentication identity. */
  readonly username: string;
  /** The password, as sent. */
  readonly password: string;
  /** The identity to act as, when the client asked for a different one (PLAIN only). */
  readonly authzid: string | undefined;
}

/**
 * XOAUTH2: an OAuth 2.0 bearer token.
 *
 * @example
 * ```ts
 * if (credentials.mechanism === 'XOAUTH2') return oauth.verify(credentials.username, credentials.accessToken);
 * ```
 */
export interface TokenCredentials {
  /** Always `XOAUTH2`. */
  readonly mechanism: 'XOAUTH2';
  /** The user the token is for. */
  readonly username: string;
  /** The bearer token; check it with your identity provider. */
  readonly accessToken: string;
}

/**
 * CRAM-MD5: no password on the wire; check the client's digest against the stored password.
 *
 * @example
 * ```ts
 * if (credentials.mechanism === 'CRAM-MD5') return credentials.verify(await users.password(credentials.username));
 * ```
 */
export interface CramMd5Credentials {
  /** Always `CRAM-MD5`. */
  readonly mechanism: 'CRAM-MD5';
  /** The user claimed. */
  readonly username: string;
  /** Whether the client's digest matches `password`, the one stored for `username`. */
  verify(password: string): boolean;
}

/**
 * SCRAM-SHA-256: no password on the wire; return the user's stored {@link ScramSecret}.
 *
 * @example
 * ```ts
 * if (credentials.mechanism === 'SCRAM-SHA-256') return (await users.scramSecret(credentials.username)) ?? false;
 * ```
 */
export interface ScramCredentials {
  /** Always `SCRAM-SHA-256`. */
  readonly mechanism: 'SCRAM-SHA-256';
  /** The user claimed. */
  readonly username: string;
  /** The identity to act as, when the client asked for a different one. */
  readonly authzid: string | undefined;
}

/**
 * What the client presented, handed to the application's `authenticate` callback. For CRAM-MD5
 * and SCRAM-SHA-256 no password crosses the wire, so the callback gets none: CRAM-MD5 offers
 * `verify(password)`, SCRAM-SHA-256 asks for the stored {@link ScramSecret}.
 *
 * @example
 * ```ts
 * const authenticate: Authenticator = async (credentials) => {
 *   switch (credentials.mechanism) {
 *     case 'PLAIN':
 *     case 'LOGIN': return users.checkPassword(credentials.username, credentials.password);
 *     case 'CRAM-MD5': return credentials.verify(await users.password(credentials.username));
 *     case 'XOAUTH2': return oauth.check(credentials.username, credentials.accessToken);
 *     case 'SCRAM-SHA-256': return (await users.scramSecret(credentials.username)) ?? false;
 *   }
 * };
 * ```
 */
export type AuthCredentials = PasswordCredentials | TokenCredentials | CramMd5Credentials | ScramCredentials;

/**
 * A user's stored SCRAM-SHA-256 secret (RFC 5802 §3): enough to verify a client without storing
 * its password. Make one with {@link scramSecret}.
 *
 * @example
 * ```ts
 * const secret: ScramSecret = scramSecret('pencil');
 * await users.save('user', secret); // keep salt, iterations, storedKey, serverKey
 * ```
 */
export interface ScramSecret {
  /** The random salt. */
  readonly salt: Buffer;
  /** PBKDF2 iterations, at least 4096. */
  readonly iterations: number;
  /** H(HMAC(SaltedPassword, "Client Key")). */
  readonly storedKey: Buffer;
  /** HMAC(SaltedPassword, "Server Key"). */
  readonly serverKey: Buffer;
}

/**
 * What `authenticate` answers: `true` accepts (the user is the username), a string accepts as that
 * user, `false` refuses (535). For SCRAM-SHA-256, return the user's {@link ScramSecret} (or `false`
 * for an unknown user; the exchange then fails without telling the client which part was wrong).
 *
 * @example
 * ```ts
 * const authenticate: Authenticator = ({ mechanism, username }) =>
 *   mechanism === 'SCRAM-SHA-256' ? (secrets.get(username) ?? false) : false;
 * ```
 */
export type AuthDecision = boolean | string | ScramSecret;

/** The next thing the connection does in an exchange. */
export type SaslStep =
  | { readonly kind: 'challenge'; readonly data: Buffer }
  | { readonly kind: 'credentials'; readonly credentials: AuthCredentials }
  | { readonly kind: 'success'; readonly user: string }
  | { readonly kind: 'failure'; readonly reply: Reply; readonly countsAsFailure: boolean };

/** One AUTH exchange. */
export interface SaslExchange {
  /** The AUTH command's initial response (RFC 4954 §4), or `undefined` when there was none. */
  start(initial: Buffer | undefined): SaslStep;
  /** A client response to a challenge. */
  respond(data: Buffer): SaslStep;
  /** The application's answer to a `credentials` step. */
  decide(decision: AuthDecision): SaslStep;
}

/** Options for new exchanges; `random` and `serverNonce` are for tests. */
export interface SaslOptions {
  readonly hostname: string;
  readonly random?: (bytes: number) => Buffer;
  readonly serverNonce?: () => string;
}

export const fail = (r: Reply, countsAsFailure = false): SaslStep => ({ kind: 'failure', reply: r, countsAsFailure });
export const challenge = (text: string | Buffer): SaslStep => ({
  kind: 'challenge',
  data: typeof text === 'string' ? Buffer.from(text) : text,
});

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function utf8(data: Buffer): string | undefined {
  try {
    return UTF8.decode(data);
  } catch {
    return undefined;
  }
}

/** Accepts or refuses after a plain verdict (all but SCRAM). */
export function verdict(decision: AuthDecision, username: string): SaslStep {
  if (decision === true) return { kind: 'success', user: username };
  if (typeof decision === 'string' && decision !== '') return { kind: 'success', user: decision };
  if (decision === false) return fail(REPLIES.authInvalid(), true);
  return fail(REPLIES.authTemporary());
}
