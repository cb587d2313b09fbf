/**
 * Mail authentication in a transaction (the `mailAuth` setting): the application's verifier,
 * run over a held body before `data()` or over a streaming message as it arrives, its results
 * kept on the request, our own authserv-id's `Authentication-Results` fields removed from what
 * the handler reads, and the refusal `dmarcEnforce` asks for.
 */
import { PassThrough } from 'node:stream';
import { DkimSigner } from '../auth/sign.js';
import { Verifier, withoutOwnResults, type MessageAuthentication } from '../auth/verify.js';
import { SMTPError } from '../protocol/reply.js';
import { HeadGate } from './head-gate.js';
import type { MessageStream } from './message-stream.js';
import type { SMTPRequest } from './request.js';
import type { ApplicationSettings } from './settings.js';
import { serviceKey, type Services } from './services.js';

const VERIFIER = serviceKey<Verifier>('mail authentication');

/** The application's verifier, or `undefined` when `mailAuth` is off. */
export function verifierOf(settings: ApplicationSettings, services: Services): Verifier | undefined {
  if (!settings.mailAuth) return undefined;
  return services.get(
    VERIFIER,
    () =>
      new Verifier({
        authservId: settings.authservId ?? settings.hostname,
        dnsServers: settings.dnsServers,
        timeoutMs: settings.mailAuthTimeout,
        seal: sealKey(settings.arcSeal),
      }),
  );
}

/** The ARC sealing key, checked as a DKIM key is (RSA only: mailauth seals with rsa-sha256). */
export function sealKey(seal: ApplicationSettings['arcSeal']): { domain: string; selector: string; pem: string } | undefined {
  if (seal === undefined) return undefined;
  const [key] = new DkimSigner([seal], 'arcSeal').keys();
  if (key === undefined || key.algorithm !== 'rsa-sha256') throw new RangeError('arcSeal: the key must be RSA (ARC seals with rsa-sha256)');
  return { domain: key.domain, selector: key.selector, pem: key.pem };
}

/** The `550 5.7.1` for a message that fails DMARC under `p=reject`, when enforcing. */
function refusal(auth: MessageAuthentication, enforce: boolean): SMTPError | undefined {
  if (!enforce || auth.dmarc.result !== 'fail' || auth.dmarc.policy !== 'reject') return undefined;
  return new SMTPError(550, [5, 7, 1], `Message refused: it fails the DMARC policy of ${auth.dmarc.domain}`);
}

/** How much of a streaming message the verifier may be behind, in bytes, before the client waits for it. */
export const VERIFY_BEHIND = 1024 * 1024;

function origin(request: SMTPRequest): { ip: string; helo: string; sender: string } {
  return { ip: request.session.remoteAddress, helo: request.session.heloName, sender: request.mailFrom };
}

/** A held body: verified, then given to the request without our own results fields; throws the refusal. */
export async function authenticateBody(verifier: Verifier, body: Buffer, request: SMTPRequest, enforce: boolean): Promise<void> {
  const auth = await verifier.verify(body, origin(request));
  request.keepAuthentication(auth);
  request.setBody(withoutOwnResults(body, verifier.authservId));
  const refused = refusal(auth, enforce);
  if (refused !== undefined) throw refused;
}

/**
 * A streaming message: a copy of each part goes to the verifier as it arrives, and the header
 * section reaches the handler without our own results fields. Resolves once verified; rejects
 * with the refusal.
 */
export function authenticateStream(
  verifier: Pick<Verifier, 'authservId' | 'verify'>,
  stream: MessageStream,
  request: SMTPRequest,
  enforce: boolean,
): Promise<void> {
  // What the verifier has not read yet is held here, up to VERIFY_BEHIND: past it the client is
  // not read until the verifier catches up (as for a handler that reads slowly).
  const copy = new PassThrough({ highWaterMark: VERIFY_BEHIND });
  let ended = false;
  stream.inspect(
    (part) => {
      if (ended) return true;
      if (part === null || part instanceof Error) {
        ended = true;
        if (part === null) copy.end();
        else copy.destroy(part);
        return true;
      }
      // A copy: the part's memory is read into again once this returns.
      return copy.write(Buffer.from(part));
    },
    () =>
      new Promise<void>((resolve) => {
        if (ended || copy.destroyed || !copy.writableNeedDrain) return resolve();
        const caughtUp = (): void => {
          copy.off('drain', caughtUp);
          copy.off('close', caughtUp);
          resolve();
        };
        copy.on('drain', caughtUp);
        copy.on('close', caughtUp);
      }),
    new HeadGate((head) => withoutOwnResults(head, verifier.authservId)),
  );
  const verdict = verifier.verify(copy, origin(request));
  // A verdict before the end (the checks ran out of time): the rest is not copied any more.
  void verdict.then(() => {
    if (ended) return;
    ended = true;
    copy.destroy();
  });
  const done = verdict.then((auth) => {
    request.keepAuthentication(auth);
    const refused = refusal(auth, enforce);
    if (refused !== undefined) throw refused;
    return auth;
  });
  request.setAuthenticating(done);
  const settled = done.then(() => undefined);
  // Awaited by the transaction unless the handler failed first (it may have seen the refusal itself).
  settled.catch(() => undefined);
  return settled;
}
