/**
 * A relay: accepts mail for the domains you handle and forwards it to a smarthost, whose answer
 * (accepted, refused for good, try later) becomes the client's answer.
 *
 *   SMARTHOST=smtp.example.com SMARTHOST_PORT=587 RELAY_DOMAINS=example.com,example.org \
 *     SMARTHOST_USER=me SMARTHOST_PASSWORD=… npx tsx examples/relay-server.ts
 */
import { Application } from '../lib/index.js';
import { inDomains, Relay, type RelaySettings } from '../lib/entry/outbound.js';
import { isMain, requireEnv, serve } from './serve.js';

/**
 * Relays only to the listed domains, whoever the client is (even on loopback, which `Relay`
 * trusts by default). Everything else is `554 5.7.1 Relay access denied`.
 */
export class DomainRelay extends Relay {
  override mayRelay(address: string): boolean {
    return inDomains(address, this.settings.relayDomains);
  }
}

export function createRelayServer(
  host: string,
  port: number,
  domains: string,
  auth?: { user: string; password: string },
): Application<RelaySettings> {
  return new Application(DomainRelay, {
    hostname: 'localhost',
    relayHost: host,
    relayPort: port,
    relayDomains: domains.split(','),
    ...(auth === undefined ? {} : { relayUser: auth.user, relayPassword: auth.password }),
  });
}

if (isMain(import.meta.url)) {
  const { SMARTHOST, RELAY_DOMAINS } = requireEnv('relay-server', 'SMARTHOST', 'RELAY_DOMAINS');
  const { SMARTHOST_PORT, SMARTHOST_USER, SMARTHOST_PASSWORD } = process.env;
  const auth = SMARTHOST_USER === undefined ? undefined : { user: SMARTHOST_USER, password: SMARTHOST_PASSWORD ?? '' };
  const app = createRelayServer(SMARTHOST, Number(SMARTHOST_PORT ?? 25), RELAY_DOMAINS, auth);
  await serve(app, `relaying to ${SMARTHOST}; listening`, 2525);
}
