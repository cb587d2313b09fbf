/**
 * A small MTA for its own users (port 587): STARTTLS and AUTH required, mail only from the user's
 * own address, each message queued durably in QUEUE_DIR and delivered to every recipient domain's
 * mail exchangers, with retries and bounces.
 *
 *   TLS_KEY=key.pem TLS_CERT=cert.pem QUEUE_DIR=./queue PORT=2587 npx tsx examples/mta.ts
 *
 * DNS_SERVERS (comma-separated) and DELIVERY_PORT point it at other DNS servers and exchanger
 * ports, as its test does. The demo user is alice / wonderland. `npx sirocco queue list ./queue`
 * shows what waits.
 */
import { readFileSync } from 'node:fs';
import { Application, SMTPError } from '../lib/index.js';
import { Deliver, type DeliverSettings } from '../lib/entry/outbound.js';
import { isMain, requireEnv, serve } from './serve.js';
import { submissionSettings } from './submission.js';

/** Delivers for authenticated users only (Deliver already refuses anyone else's relaying), as themselves. */
export class UserMta extends Deliver {
  override prepare(): void {
    const user = this.request.session.user ?? '';
    if (!this.request.mailFrom.startsWith(`${user}@`)) throw new SMTPError(553, [5, 7, 1], `sender must be ${user}@…`);
  }

  /** Only authenticated users send anywhere: not even loopback is trusted without AUTH. */
  override mayRelay(): boolean {
    return this.request.session.user !== undefined;
  }
}

export function createMta(
  key: Buffer,
  cert: Buffer,
  queueDir: string,
  delivery: Partial<DeliverSettings> = {},
): Application<DeliverSettings> {
  return new Application(UserMta, { ...submissionSettings(key, cert), queueDir, ...delivery });
}

if (isMain(import.meta.url)) {
  const { TLS_KEY, TLS_CERT, QUEUE_DIR } = requireEnv('mta', 'TLS_KEY', 'TLS_CERT', 'QUEUE_DIR');
  const { DNS_SERVERS, DELIVERY_PORT } = process.env;
  const app = createMta(readFileSync(TLS_KEY), readFileSync(TLS_CERT), QUEUE_DIR, {
    ...(DNS_SERVERS === undefined ? {} : { dnsServers: DNS_SERVERS.split(',') }),
    ...(DELIVERY_PORT === undefined ? {} : { deliveryPort: Number(DELIVERY_PORT) }),
  });
  await serve(app, 'MTA for its users', 2587);
}
