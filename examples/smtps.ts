/**
 * An SMTPS server (RFC 8314, port 465): TLS from the first byte, AUTH required.
 *
 *   TLS_KEY=key.pem TLS_CERT=cert.pem PORT=2465 npx tsx examples/smtps.ts
 *
 * The demo user is alice / wonderland.
 */
import { readFileSync } from 'node:fs';
import { Application } from '../lib/index.js';
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

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const { TLS_KEY, TLS_CERT } = process.env;
  if (TLS_KEY === undefined || TLS_KEY === '' || TLS_CERT === undefined || TLS_CERT === '') {
    console.error('smtps: set TLS_KEY and TLS_CERT to the paths of a PEM key and certificate');
    process.exit(2);
  }
  const server = await createSmtps(readFileSync(TLS_KEY), readFileSync(TLS_CERT)).listen(Number(process.env.PORT ?? 2465), '127.0.0.1');
  const address = server.address();
  console.log(`SMTPS server on 127.0.0.1:${typeof address === 'object' && address !== null ? address.port : '?'}`);
  process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
  process.once('SIGINT', () => void server.close().then(() => process.exit(0)));
}
