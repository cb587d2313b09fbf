/** The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), for tests: no common SMTP client has it. */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RawClient } from './raw-client.js';

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** Runs AUTH SCRAM-SHA-256 on `client`; resolves to the server's final reply line. */
export async function scramAuth(client: RawClient, username: string, password: string): Promise<string> {
  const nonce = randomBytes(18).toString('base64');
  const clientFirstBare = `n=${username.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${nonce}`;
  const first = await client.command(`AUTH SCRAM-SHA-256 ${Buffer.from(`n,,${clientFirstBare}`).toString('base64')}`);
  if (!first.startsWith('334 ')) return first;
  const serverFirst = Buffer.from(first.slice(4).trim(), 'base64').toString();
  const fields = Object.fromEntries(serverFirst.split(',').map((f) => [f.slice(0, 1), f.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(fields.s ?? '', 'base64'), Number(fields.i), 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=biws,r=${fields.r ?? ''}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] ?? 0)));
  const final = await client.command(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`).toString('base64'));
  if (!final.startsWith('334 ')) return final;
  const serverFinal = Buffer.from(final.slice(4).trim(), 'base64').toString();
  const expected = `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}`;
  if (!timingSafeEqual(Buffer.from(serverFinal), Buffer.from(expected))) throw new Error('the server did not prove it knows the secret');
  return client.command('');
}
