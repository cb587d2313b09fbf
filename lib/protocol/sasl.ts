/**
 * SASL mechanisms for SMTP AUTH (RFC 4954), as pure state machines: client messages in, the next
 * step out. The application's `authenticate` callback is asked in the middle (step
 * `credentials`); the connection does the asking and the I/O.
 *
 * PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195), XOAUTH2 (Google's
 * bearer-token profile) and SCRAM-SHA-256 (RFC 5802, RFC 7677).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
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

/**
 * Derives the SCRAM-SHA-256 secret to store for a password (RFC 5802 §3).
 *
 * @example
 * ```ts
 * const secret = scramSecret('pencil'); // store salt, iterations, storedKey, serverKey
 * ```
 */
export function scramSecret(password: string, options: { salt?: Buffer; iterations?: number } = {}): ScramSecret {
  const salt = options.salt ?? randomBytes(16);
  const iterations = options.iterations ?? 4096;
  if (!Number.isInteger(iterations) || iterations < 4096) {
    throw new RangeError(`scramSecret: iterations must be an integer of at least 4096 (RFC 7677 §4), got ${iterations}`);
  }
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  return { salt, iterations, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

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

export function createExchange(mechanism: SaslMechanism, options: SaslOptions): SaslExchange {
  const random = options.random ?? randomBytes;
  switch (mechanism) {
    case 'PLAIN':
      return new PlainExchange();
    case 'LOGIN':
      return new LoginExchange();
    case 'CRAM-MD5':
      return new CramMd5Exchange(options.hostname, random);
    case 'XOAUTH2':
      return new XOAuth2Exchange();
    case 'SCRAM-SHA-256':
      return new ScramSha256Exchange(random, options.serverNonce ?? (() => random(18).toString('base64')));
  }
}

const fail = (r: Reply, countsAsFailure = false): SaslStep => ({ kind: 'failure', reply: r, countsAsFailure });
const challenge = (text: string | Buffer): SaslStep => ({ kind: 'challenge', data: typeof text === 'string' ? Buffer.from(text) : text });

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function utf8(data: Buffer): string | undefined {
  try {
    return UTF8.decode(data);
  } catch {
    return undefined;
  }
}

/** Accepts or refuses after a plain verdict (all but SCRAM). */
function verdict(decision: AuthDecision, username: string): SaslStep {
  if (decision === true) return { kind: 'success', user: username };
  if (typeof decision === 'string' && decision !== '') return { kind: 'success', user: decision };
  if (decision === false) return fail(REPLIES.authInvalid(), true);
  return fail(REPLIES.authTemporary());
}

// RFC 4616 §2: message = [authzid] NUL authcid NUL passwd
class PlainExchange implements SaslExchange {
  #username = '';

  start(initial: Buffer | undefined): SaslStep {
    return initial === undefined ? challenge('') : this.respond(initial);
  }

  respond(data: Buffer): SaslStep {
    const text = utf8(data);
    const parts = text?.split('\0');
    if (parts?.length !== 3) return fail(REPLIES.authMalformed('Malformed PLAIN response'));
    const [authzid = '', username = '', password = ''] = parts;
    if (username === '') return fail(REPLIES.authMalformed('Malformed PLAIN response'));
    this.#username = username;
    return {
      kind: 'credentials',
      credentials: { mechanism: 'PLAIN', username, password, authzid: authzid === '' || authzid === username ? undefined : authzid },
    };
  }

  decide(decision: AuthDecision): SaslStep {
    return verdict(decision, this.#username);
  }
}

class LoginExchange implements SaslExchange {
  #username: string | undefined;

  start(initial: Buffer | undefined): SaslStep {
    return initial === undefined ? challenge('Username:') : this.respond(initial);
  }

  respond(data: Buffer): SaslStep {
    const text = utf8(data);
    if (text === undefined) return fail(REPLIES.authMalformed('Malformed LOGIN response'));
    if (this.#username === undefined) {
      if (text === '') return fail(REPLIES.authMalformed('Malformed LOGIN response'));
      this.#username = text;
      return challenge('Password:');
    }
    return { kind: 'credentials', credentials: { mechanism: 'LOGIN', username: this.#username, password: text, authzid: undefined } };
  }

  decide(decision: AuthDecision): SaslStep {
    return verdict(decision, this.#username ?? '');
  }
}

// RFC 2195: challenge <unique@host>, response "user SP hex(HMAC-MD5(password, challenge))"
class CramMd5Exchange implements SaslExchange {
  readonly #challenge: string;
  #username = '';

  constructor(hostname: string, random: (n: number) => Buffer) {
    this.#challenge = `<${random(12).toString('hex')}.${Date.now()}@${hostname}>`;
  }

  start(initial: Buffer | undefined): SaslStep {
    if (initial !== undefined) return fail(REPLIES.authMalformed('CRAM-MD5 takes no initial response'));
    return challenge(this.#challenge);
  }

  respond(data: Buffer): SaslStep {
    const text = utf8(data) ?? '';
    const space = text.lastIndexOf(' ');
    const digest = text.slice(space + 1).toLowerCase();
    if (space <= 0 || !/^[0-9a-f]{32}$/.test(digest)) return fail(REPLIES.authMalformed('Malformed CRAM-MD5 response'));
    const username = text.slice(0, space);
    const expectedFor = (password: string): Buffer => Buffer.from(createHmac('md5', password).update(this.#challenge).digest('hex'));
    this.#username = username;
    return {
      kind: 'credentials',
      credentials: { mechanism: 'CRAM-MD5', username, verify: (password) => timingSafeEqual(expectedFor(password), Buffer.from(digest)) },
    };
  }

  decide(decision: AuthDecision): SaslStep {
    return verdict(decision, this.#username);
  }
}

// "user=" user ^A "auth=Bearer " token ^A ^A
class XOAuth2Exchange implements SaslExchange {
  #username = '';
  #failed = false;

  start(initial: Buffer | undefined): SaslStep {
    return initial === undefined ? challenge('') : this.respond(initial);
  }

  respond(data: Buffer): SaslStep {
    // After a refusal the client answers the error challenge with an empty line (or anything).
    if (this.#failed) return fail(REPLIES.authInvalid(), true);
    const fields = (utf8(data) ?? '').split('\x01');
    const user = fields.find((f) => f.startsWith('user='))?.slice(5);
    const auth = fields.find((f) => f.toLowerCase().startsWith('auth=bearer '))?.slice(12);
    if (user === undefined || user === '' || auth === undefined || auth === '') {
      return fail(REPLIES.authMalformed('Malformed XOAUTH2 response'));
    }
    this.#username = user;
    return { kind: 'credentials', credentials: { mechanism: 'XOAUTH2', username: user, accessToken: auth } };
  }

  decide(decision: AuthDecision): SaslStep {
    if (decision === false) {
      this.#failed = true;
      return challenge(JSON.stringify({ status: '401', schemes: 'bearer' }));
    }
    return verdict(decision, this.#username);
  }
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

// RFC 5802 §5.1: saslname with "=2C" for "," and "=3D" for "="; any other "=" is invalid.
function decodeSaslName(text: string): string | undefined {
  if (/=(?!2C|3D)/.test(text)) return undefined;
  return text.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

class ScramSha256Exchange implements SaslExchange {
  readonly #random: (n: number) => Buffer;
  readonly #serverNonce: () => string;
  #state: 'first' | 'final' | 'verified' | 'doomed-final' = 'first';
  #gs2Header = '';
  #clientFirstBare = '';
  #nonce = '';
  #username = '';
  #serverFirst = '';
  #secret: ScramSecret | undefined;

  constructor(random: (n: number) => Buffer, serverNonce: () => string) {
    this.#random = random;
    this.#serverNonce = serverNonce;
  }

  start(initial: Buffer | undefined): SaslStep {
    return initial === undefined ? challenge('') : this.respond(initial);
  }

  respond(data: Buffer): SaslStep {
    const text = utf8(data);
    if (text === undefined) return fail(REPLIES.authMalformed('Malformed SCRAM message'));
    switch (this.#state) {
      case 'first':
        return this.#clientFirst(text);
      case 'final':
      case 'doomed-final':
        return this.#clientFinal(text);
      case 'verified':
        // RFC 4954 §4: the server-final message went out as a challenge; the client acknowledges it.
        return text === '' ? { kind: 'success', user: this.#username } : fail(REPLIES.authMalformed('Malformed SCRAM message'));
    }
  }

  #clientFirst(text: string): SaslStep {
    // gs2-header: gs2-cbind-flag "," [ "a=" authzid ] ","
    const match = /^([ny]),(?:a=([^,]*))?,(n=([^,]*),r=([\x21-\x2b\x2d-\x7e]+)(?:,.*)?)$/.exec(text);
    if (match === null) {
      return text.startsWith('p=')
        ? fail(REPLIES.authMalformed('Channel binding is not supported'))
        : fail(REPLIES.authMalformed('Malformed SCRAM message'));
    }
    const [, flag = 'n', rawAuthzid, bare = '', rawUser = '', clientNonce = ''] = match;
    if (/,m=/.test(bare)) return fail(REPLIES.authMalformed('Unsupported SCRAM extension'));
    const username = decodeSaslName(rawUser);
    const authzid = rawAuthzid === undefined ? undefined : decodeSaslName(rawAuthzid);
    if (username === undefined || username === '' || (rawAuthzid !== undefined && authzid === undefined)) {
      return fail(REPLIES.authMalformed('Malformed SCRAM message'));
    }
    this.#gs2Header = `${flag},${rawAuthzid === undefined ? '' : `a=${rawAuthzid}`},`;
    this.#clientFirstBare = bare;
    this.#username = username;
    this.#nonce = clientNonce + this.#serverNonce();
    return {
      kind: 'credentials',
      credentials: { mechanism: 'SCRAM-SHA-256', username, authzid: authzid === username ? undefined : authzid },
    };
  }

  decide(decision: AuthDecision): SaslStep {
    if (this.#state !== 'first' || this.#clientFirstBare === '') return fail(REPLIES.authTemporary());
    if (decision === false) {
      // An unknown user gets a plausible exchange that cannot succeed (RFC 5802 §9).
      this.#secret = scramSecret(this.#random(16).toString('hex'), { salt: this.#random(16) });
      this.#state = 'doomed-final';
    } else if (typeof decision === 'object' && Buffer.isBuffer(decision.salt)) {
      this.#secret = decision;
      this.#state = 'final';
    } else {
      // A verdict where a secret was needed is the application's mistake, not the client's.
      return fail(REPLIES.authTemporary());
    }
    this.#serverFirst = `r=${this.#nonce},s=${this.#secret.salt.toString('base64')},i=${this.#secret.iterations}`;
    return challenge(this.#serverFirst);
  }

  #clientFinal(text: string): SaslStep {
    const secret = this.#secret;
    const match = /^(c=([^,]*),r=([^,]*)(?:,[^,]*)*),p=([A-Za-z0-9+/=]+)$/.exec(text);
    if (secret === undefined || match === null) return fail(REPLIES.authMalformed('Malformed SCRAM message'));
    const [, withoutProof = '', binding = '', nonce = '', proofText = ''] = match;
    if (binding !== Buffer.from(this.#gs2Header).toString('base64') || nonce !== this.#nonce) return fail(REPLIES.authInvalid(), true);
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientSignature = hmac(secret.storedKey, authMessage);
    const proof = Buffer.from(proofText, 'base64');
    if (proof.length !== clientSignature.length) return fail(REPLIES.authInvalid(), true);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = (proof[i] ?? 0) ^ (clientSignature[i] ?? 0);
    const ok = timingSafeEqual(sha256(clientKey), secret.storedKey);
    if (!ok || this.#state === 'doomed-final') return fail(REPLIES.authInvalid(), true);
    this.#state = 'verified';
    return challenge(`v=${hmac(secret.serverKey, authMessage).toString('base64')}`);
  }
}

/** Strict base64 (RFC 4648 §4) as used in SASL responses; `undefined` when malformed. */
export function decodeBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}
