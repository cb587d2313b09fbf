/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as a pure state machine, and the secret to store for it.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { REPLIES } from './replies.js';
import { challenge, fail, utf8, type AuthDecision, type SaslExchange, type SaslStep, type ScramSecret } from './sasl-base.js';

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

export class ScramSha256Exchange implements SaslExchange {
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
