/**
 * A relay: accepts mail for the domains you handle and forwards it to a smarthost, whose answer
 * (accepted, refused for good, try later) becomes the client's answer.
 *
 *   SMARTHOST=smtp.example.com SMARTHOST_PORT=587 RELAY_DOMAINS=example.com,example.org \
 *     SMARTHOST_USER=me SMARTHOST_PASSWORD=… npx tsx examples/relay-server.ts
 */
import { Application, closeRelay, Relay, SMTPError, type RelaySettings } from '../lib/index.js';

/** Relays only for the listed domains, so the server is not an open relay. */
export class DomainRelay extends Relay {
  override rcpt(address: string): void {
    const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
    const domains = String((this.settings as { relayDomains?: string }).relayDomains ?? '').split(',');
    if (!domains.includes(domain)) throw new SMTPError(550, [5, 7, 1], 'not relaying to that domain');
  }
}

export function createRelayServer(host: string, port: number, domains: string, auth?: { user: string; password: string }): Application<RelaySettings> {
  return new Application(DomainRelay, {
    hostname: 'localhost',
    relayHost: host,
    relayPort: port,
    relayDomains: domains,
    ...(auth === undefined ? {} : { relayUser: auth.user, relayPassword: auth.password }),
  });
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const { SMARTHOST, SMARTHOST_PORT, RELAY_DOMAINS, SMARTHOST_USER, SMARTHOST_PASSWORD } = process.env;
  if (SMARTHOST === undefined || RELAY_DOMAINS === undefined) {
    console.error('relay-server: set SMARTHOST (and SMARTHOST_PORT) and RELAY_DOMAINS');
    process.exit(2);
  }
  const auth = SMARTHOST_USER === undefined ? undefined : { user: SMARTHOST_USER, password: SMARTHOST_PASSWORD ?? '' };
  const app = createRelayServer(SMARTHOST, Number(SMARTHOST_PORT ?? 25), RELAY_DOMAINS, auth);
  const server = await app.listen(Number(process.env.PORT ?? 2525), '127.0.0.1');
  const address = server.address();
  console.log(`relaying to ${SMARTHOST}; listening on 127.0.0.1:${typeof address === 'object' && address !== null ? address.port : '?'}`);
  const stop = (): void => {
    void server.close().then(() => {
      closeRelay(app.settings);
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
