/**
 * SASL mechanisms for SMTP AUTH (RFC 4954), as pure state machines: client messages in, the next
 * step out. The application's `authenticate` callback is asked in the middle (step
 * `credentials`); the connection does the asking and the I/O.
 *
 * PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195), XOAUTH2 (Google's
 * bearer-token profile) and SCRAM-SHA-256 (RFC 5802, RFC 7677).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { REPLIES } from './replies.js';
import { ScramSha256Exchange } from './sasl-scram.js';
import {
  challenge,
  fail,
  utf8,
  verdict,
  type AuthDecision,
  type SaslExchange,
  type SaslMechanism,
  type SaslOptions,
  type SaslStep,
} from './sasl-base.js';

export { scramSecret } from './sasl-scram.js';
export {
  SASL_MECHANISMS,
  type AuthCredentials,
  type AuthDecision,
  type CramMd5Credentials,
  type PasswordCredentials,
  type SaslExchange,
  type SaslMechanism,
  type SaslOptions,
  type SaslStep,
  type ScramCredentials,
  type ScramSecret,
  type TokenCredentials,
} from './sasl-base.js';

/** A new exchange for `mechanism`: the connection feeds it the client's lines and the application's verdict. */
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

/** Strict base64 (RFC 4648 §4) as used in SASL responses; `undefined` when malformed. */
export function decodeBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}
