/**
 * A submission server (RFC 6409, port 587): STARTTLS required, then AUTH required, then mail is
 * accepted from the authenticated user only. Run it with a key and certificate:
 *
 *   TLS_KEY=key.pem TLS_CERT=cert.pem PORT=2587 npx tsx examples/submission.ts
 *
 * The demo user is alice / wonderland (PLAIN, LOGIN and SCRAM-SHA-256).
 */
import { readFileSync } from 'node:fs';
import { Application, RequestHandler, scramSecret, SMTPError, type Authenticator, type SettingsInput } from '../lib/index.js';
import { isMain, requireEnv, serve } from './serve.js';

const PASSWORDS = new Map([['alice', 'wonderland']]);
const SCRAM_SECRETS = new Map([...PASSWORDS].map(([user, password]) => [user, scramSecret(password)]));

export const authenticate: Authenticator = (credentials) => {
  switch (credentials.mechanism) {
    case 'PLAIN':
    case 'LOGIN':
      return PASSWORDS.get(credentials.username) === credentials.password;
    case 'SCRAM-SHA-256':
      return SCRAM_SECRETS.get(credentials.username) ?? false;
    default:
      return false;
  }
};

export class Submission extends RequestHandler {
  override prepare(): void {
    // Users send as themselves only.
    const user = this.request.session.user ?? '';
    if (!this.request.mailFrom.startsWith(`${user}@`)) {
      throw new SMTPError(553, [5, 7, 1], `sender must be ${user}@…`);
    }
  }

  override data(): void {
    const { mailFrom, rcptTos, body, session } = this.request;
    console.log(`accepted ${body.length} bytes from ${session.user ?? '?'} <${mailFrom}> for ${rcptTos.join(', ')}`);
  }
}

/** What a submission port needs: TLS first, then AUTH, before any mail. */
export function submissionSettings(key: Buffer, cert: Buffer): SettingsInput {
  return {
    hostname: 'localhost',
    tls: { key, cert },
    requireTLS: true,
    authenticate,
    authMechanisms: ['SCRAM-SHA-256', 'PLAIN', 'LOGIN'],
    requireAuth: true,
  };
}

export function createSubmission(key: Buffer, cert: Buffer): Application {
  return new Application(Submission, submissionSettings(key, cert));
}

if (isMain(import.meta.url)) {
  const { TLS_KEY, TLS_CERT } = requireEnv('submission', 'TLS_KEY', 'TLS_CERT');
  await serve(createSubmission(readFileSync(TLS_KEY), readFileSync(TLS_CERT)), 'submission server', 2587);
}
