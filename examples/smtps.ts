/**
 * An SMTPS server (RFC 8314, port 465): TLS from the first byte, AUTH required.
 *
 *   TLS_KEY=key.pem TLS_CERT=cert.pem PORT=2465 npx tsx examples/smtps.ts
 *
 * The demo user is alice / wonderland.
 */
import { readFileSync } from 'node:fs';
import { Application } from '../lib/index.js';
import { isMain, requireEnv, serve } from './serve.js';
import { authenticate, Submission } from './submission.js';

export function createSmtps(key: Buffer, cert: Buffer): Application {
  return new Application(Submission, {
    hostname: 'localhost',
    tls: { key, cert },
    implicitTLS: true,
    authenticate,
    authMechanisms: ['SCRAM-SHA-256', 'PLAIN', 'LOGIN'],
    requireAuth: true,
  });
}

if (isMain(import.meta.url)) {
  const { TLS_KEY, TLS_CERT } = requireEnv('smtps', 'TLS_KEY', 'TLS_CERT');
  await serve(createSmtps(readFileSync(TLS_KEY), readFileSync(TLS_CERT)), 'SMTPS server', 2465);
}
