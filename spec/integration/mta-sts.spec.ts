/**
 * MTA-STS (RFC 8461) in Deliver: policies served over HTTPS on loopback with a certificate from
 * the test CA, announced in a loopback DNS. Enforce with a matching exchanger, enforce with none
 * matching (the message waits, 4.7.5), testing mode, a policy fetched again once its id changes,
 * and a fetch that never answers.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliveryQueue } from '../../lib/entry/outbound.js';
import { makeCertificates, serverCertificate, type TestCertificates } from '../helpers/certs.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { plainTransport } from '../helpers/mailer.js';
import { startDeliverer, startFleet, type Fleet } from '../helpers/outbound.js';
import { closeServers, until } from '../helpers/server.js';

let certs: TestCertificates;
let dns: TestDns;
let https: Server;
let fleet: Fleet;
/** Policies by host, and how many times each was fetched; a host missing here never answers. */
const policies = new Map<string, string>();
const fetched = new Map<string, number>();
const cleanups: (() => void | Promise<void>)[] = [];

const DOMAINS = ['sts.test', 'nomatch.test', 'testing.test', 'slow.test', 'change.test', 'badcert.test', 'expired.test', 'private.test'];

beforeAll(async () => {
  certs = makeCertificates();
  const { key, cert } = serverCertificate(
    certs,
    'sts',
    DOMAINS.map((d) => `mta-sts.${d}`),
  );
  https = createServer({ key, cert }, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, ''); // the name, without the test's port
    fetched.set(host, (fetched.get(host) ?? 0) + 1);
    const policy = policies.get(host);
    if (policy === undefined) return; // never answers
    if (req.url !== '/.well-known/mta-sts.txt') return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(policy);
  });
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  const zone: Parameters<typeof startDns>[0] = { 'mx.test': { a: ['127.0.0.3'] } };
  for (const d of DOMAINS) {
    zone[d] = { mx: [[10, 'mx.test']] };
    zone[`_mta-sts.${d}`] = { txt: ['v=STSv1; id=20261205'] };
    zone[`mta-sts.${d}`] = { a: ['127.0.0.1'] };
  }
  // Named otherwise than the exchanger's certificate: TLS there cannot be verified.
  zone['badcert.test'] = { mx: [[10, 'other-name.test']] };
  zone['other-name.test'] = { a: ['127.0.0.3'] };
  dns = await startDns(zone);
  fleet = await startFleet('127.0.0.3', { settings: { tls: { key: certs.key, cert: certs.cert } } });
});
afterAll(async () => {
  await fleet.close();
  https.closeAllConnections();
  await new Promise((resolve) => https.close(resolve));
  await dns.close();
  certs.cleanup();
});
afterEach(async () => {
  await closeServers();
  for (const c of cleanups.splice(0)) await c();
});

const policy = (mode: string, mx: string[], maxAge = 86400): string =>
  `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: ${maxAge}\r\n`;

async function deliverer(settings: Record<string, unknown> = {}) {
  const mtaStsPort = (https.address() as AddressInfo).port;
  // The policy server is on loopback: allowed for these tests.
  return startDeliverer(
    cleanups,
    { dns: dns.server, fleetPort: fleet.port, ca: certs.ca },
    { mtaStsPort, httpsToPrivateAddresses: true, ...settings },
  );
}

/** The queue's only entry once its first attempt is over (at most 10 s). */
async function firstAttempt(app: Parameters<typeof deliveryQueue>[0]) {
  const queue = deliveryQueue(app);
  let entry = (await queue.list())[0]?.entry;
  for (let i = 0; i < 200 && (entry === undefined || entry.attempts === 0); i++) {
    await new Promise((r) => setTimeout(r, 50));
    entry = (await queue.list())[0]?.entry;
  }
  return entry;
}

async function send(port: number, to: string): Promise<void> {
  await plainTransport(port).sendMail({ envelope: { from: 'a@sender.test', to: [to] }, raw: `Subject: to ${to}\r\n\r\nhello\r\n` });
}

describe('MTA-STS in Deliver', () => {
  it('enforce, the exchanger named: delivered over verified TLS', async () => {
    policies.set('mta-sts.sts.test', policy('enforce', ['mx.test']));
    const { port } = await deliverer();
    await send(port, 'bob@sts.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('bob@sts.test')), 10_000);
    expect(fleet.arrivals.find((a) => a.rcptTos.includes('bob@sts.test'))?.secure).toBe(true);
    expect(fetched.get('mta-sts.sts.test')).toBe(1);
  });

  it('enforce, the exchanger named but its certificate not verifiable: the message waits, nothing is sent', async () => {
    policies.set('mta-sts.badcert.test', policy('enforce', ['other-name.test']));
    const { port, app } = await deliverer();
    await send(port, 'bob@badcert.test');
    const entry = await firstAttempt(app);
    expect(entry?.recipients[0]).toMatchObject({ state: 'pending', code: 451, status: '4.7.5' });
    expect(fleet.arrivals.some((a) => a.rcptTos.includes('bob@badcert.test'))).toBe(false);
  });

  it('enforce, no exchanger named: the message waits with 4.7.5 and nothing is sent', async () => {
    policies.set('mta-sts.nomatch.test', policy('enforce', ['*.elsewhere.example']));
    const { port, app } = await deliverer();
    await send(port, 'bob@nomatch.test');
    const entry = await firstAttempt(app);
    expect(entry?.recipients[0]).toMatchObject({
      state: 'pending',
      code: 451,
      status: '4.7.5',
      reply: '451 4.7.5 MTA-STS: the policy of nomatch.test names none of its exchangers (mx.test)',
    });
    expect(fleet.arrivals.some((a) => a.rcptTos.includes('bob@nomatch.test'))).toBe(false);
  });

  it('testing, no exchanger named: delivered as before', async () => {
    policies.set('mta-sts.testing.test', policy('testing', ['*.elsewhere.example']));
    const { port } = await deliverer();
    await send(port, 'bob@testing.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('bob@testing.test')), 10_000);
  });

  it('keeps a policy for its max_age, and fetches it again when the record names a new id', async () => {
    policies.set('mta-sts.change.test', policy('enforce', ['mx.test']));
    const { port } = await deliverer();
    await send(port, 'one@change.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('one@change.test')), 10_000);
    await send(port, 'two@change.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('two@change.test')), 10_000);
    expect(fetched.get('mta-sts.change.test')).toBe(1);
    // A new policy: it names no exchanger of ours; the record's id says so.
    policies.set('mta-sts.change.test', policy('enforce', ['*.elsewhere.example']));
    dns.zone.set('_mta-sts.change.test', { txt: ['v=STSv1; id=20261206'] });
    const other = await deliverer();
    await send(other.port, 'three@change.test');
    await until(() => (fetched.get('mta-sts.change.test') ?? 0) === 2, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(fleet.arrivals.some((a) => a.rcptTos.includes('three@change.test'))).toBe(false);
  });

  it('fetches a policy again once its max_age has passed, the id unchanged', async () => {
    policies.set('mta-sts.expired.test', policy('enforce', ['mx.test'], 1));
    const { port } = await deliverer();
    await send(port, 'one@expired.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('one@expired.test')), 10_000);
    // Past the max_age, and past the 2 s an idle connection to the destination is kept for more mail.
    await new Promise((r) => setTimeout(r, 2600));
    await send(port, 'two@expired.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('two@expired.test')), 10_000);
    expect(fetched.get('mta-sts.expired.test')).toBe(2);
  });

  it('a policy host at a private address is not asked unless httpsToPrivateAddresses allows it: no policy, delivered as before', async () => {
    policies.set('mta-sts.private.test', policy('enforce', ['*.elsewhere.example']));
    const { port } = await deliverer({ httpsToPrivateAddresses: false });
    await send(port, 'bob@private.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('bob@private.test')), 10_000);
    expect(fetched.get('mta-sts.private.test')).toBeUndefined();
  });

  it('a policy host that never answers: no policy after the fetch timeout, delivered as before', async () => {
    policies.delete('mta-sts.slow.test');
    const { port } = await deliverer({ deliveryConnectTimeout: 1000 });
    await send(port, 'bob@slow.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('bob@slow.test')), 20_000);
    expect(fetched.get('mta-sts.slow.test')).toBe(1);
  }, 30_000);
});
