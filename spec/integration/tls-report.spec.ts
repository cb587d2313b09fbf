/**
 * SMTP TLS reporting (RFC 8460) in Deliver: sessions under an enforced MTA-STS policy, under a
 * testing one whose exchanger's certificate names another host, to an exchanger without
 * STARTTLS, and to domains whose policy cannot be had; reports posted to a loopback HTTPS
 * collector (certificate from the test CA) and mailed to a loopback exchanger, read back and
 * compared whole; counts kept across a restart.
 */
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliveryQueue } from '../../lib/entry/outbound.js';
import { makeCertificates, serverCertificate, type TestCertificates } from '../helpers/certs.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { plainTransport } from '../helpers/mailer.js';
import { startDeliverer, startFleet, tempQueue, type Fleet } from '../helpers/outbound.js';
import { closeServers, until } from '../helpers/server.js';

let certs: TestCertificates;
let dns: TestDns;
let https: Server;
let fleet: Fleet;
/** Reports posted to the collector: the request's content type and the report. */
const posted: { type: string | undefined; path: string | undefined; report: Record<string, unknown> }[] = [];
const cleanups: (() => void | Promise<void>)[] = [];

const policy = (mode: string, mx: string[]): string =>
  `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: 86400\r\n`;
const POLICIES: Record<string, string> = {
  'mta-sts.sts.test': policy('enforce', ['mx.test']),
  'mta-sts.testing.test': policy('testing', ['other-name.test']),
  'mta-sts.nomatch.test': policy('enforce', ['*.elsewhere.example']),
  'mta-sts.brokensts.test': policy('enforce', ['*.elsewhere.example']),
  'mta-sts.invalid.test': 'version: STSv9\r\nmode: enforce\r\nmx: mx.test\r\nmax_age: 86400\r\n',
};

beforeAll(async () => {
  certs = makeCertificates();
  const { key, cert } = serverCertificate(certs, 'tlsrpt', [
    'reports.test',
    'refusing.test',
    'mta-sts.unfetched.test',
    ...Object.keys(POLICIES),
  ]);
  https = createServer({ key, cert }, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, ''); // the name, without the test's port
    if (req.method === 'GET') {
      const text = POLICIES[host];
      if (text === undefined || req.url !== '/.well-known/mta-sts.txt') return void res.writeHead(404).end();
      return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(text);
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posted.push({
        type: req.headers['content-type'],
        path: req.url,
        report: JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as Record<string, unknown>,
      });
      res.writeHead(host.startsWith('refusing.') ? 503 : 201).end();
    });
  });
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  const port = (https.address() as AddressInfo).port;
  const rua = (extra = ''): string => `v=TLSRPTv1; rua=https://reports.test:${port}/v1/tlsrpt${extra}`;
  const zone: Parameters<typeof startDns>[0] = {
    'mx.test': { a: ['127.0.0.3'] },
    'other-name.test': { a: ['127.0.0.3'] },
    'plain-mx.test': { a: ['127.0.0.4'] },
    'reports.test': { a: ['127.0.0.1'] },
    'refusing.test': { a: ['127.0.0.1'] },
    'inbox.test': { mx: [[10, 'mx.test']] },
    'sts.test': { mx: [[10, 'mx.test']] },
    'testing.test': { mx: [[10, 'other-name.test']] },
    'plain.test': { mx: [[10, 'plain-mx.test']] },
    'quiet.test': { mx: [[10, 'mx.test']] },
    'nomatch.test': { mx: [[10, 'mx.test']] },
    'brokensts.test': { mx: [[10, 'mx.test']] },
    'unfetched.test': { mx: [[10, 'mx.test']] },
    'invalid.test': { mx: [[10, 'mx.test']] },
    'webpki.test': { mx: [[10, 'mx.test']] },
    '_smtp._tls.sts.test': { txt: [`${rua()},mailto:tlsrpt@inbox.test`] },
    '_smtp._tls.testing.test': { txt: [rua()] },
    '_smtp._tls.plain.test': { txt: [rua(), 'v=spf1 -all'] },
    '_smtp._tls.nomatch.test': { txt: [rua()] },
    '_smtp._tls.brokensts.test': { txt: ['v=TLSRPTv1; rua=mailto:tlsrpt@brokensts.test'] },
    '_smtp._tls.unfetched.test': { txt: [`v=TLSRPTv1; rua=https://refusing.test:${port}/r`] },
    '_smtp._tls.invalid.test': { txt: [rua('?from=sirocco')] },
    '_smtp._tls.webpki.test': { txt: [rua()] },
  };
  // mta-sts.webpki.test is not named by the collector's certificate.
  for (const d of ['sts.test', 'testing.test', 'nomatch.test', 'brokensts.test', 'unfetched.test', 'invalid.test', 'webpki.test']) {
    zone[`_mta-sts.${d}`] = { txt: ['v=STSv1; id=20261205'] };
    zone[`mta-sts.${d}`] = { a: ['127.0.0.1'] };
  }
  dns = await startDns(zone);
  fleet = await startFleet('127.0.0.3', { settings: { tls: { key: certs.key, cert: certs.cert } } });
  await fleet.add('127.0.0.4'); // no TLS offered
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
  posted.length = 0;
});

async function deliverer(settings: Record<string, unknown> = {}) {
  const mtaStsPort = (https.address() as AddressInfo).port;
  return startDeliverer(
    cleanups,
    { dns: dns.server, fleetPort: fleet.port, ca: certs.ca },
    {
      mtaStsPort,
      tlsReporting: true,
      tlsReportOrganization: 'Sirocco Test',
      tlsReportContact: 'postmaster@mta.test',
      httpsToPrivateAddresses: true, // the collector is on loopback
      ...settings,
    },
  );
}

async function send(port: number, to: string): Promise<void> {
  await plainTransport(port).sendMail({ envelope: { from: 'a@sender.test', to: [to] }, raw: `Subject: to ${to}\r\n\r\nhello\r\n` });
}

/** The collector's report for `domain`, its report id and dates checked and then left out. */
function reportFor(domain: string): Record<string, unknown> {
  const found = posted.find((p) => JSON.stringify(p.report).includes(`"policy-domain":"${domain}"`));
  expect(found?.type).toBe('application/tlsrpt+gzip');
  expect(found?.path).toMatch(/^\/v1\/tlsrpt/);
  const { 'report-id': id, 'date-range': range, ...rest } = found!.report as { 'report-id': string; 'date-range': Record<string, string> };
  expect(id).toMatch(/^\d{4}-\d\d-\d\d\.[0-9a-f]{16}@mta\.test$/);
  expect(range['start-datetime']).toMatch(/^\d{4}-\d\d-\d\dT00:00:00Z$/);
  expect(range['end-datetime']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  return rest;
}

const HEAD = { 'organization-name': 'Sirocco Test', 'contact-info': 'postmaster@mta.test' };
const STS_POLICY = {
  'policy-type': 'sts',
  'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx.test', 'max_age: 86400'],
  'policy-domain': 'sts.test',
  'mx-host': ['mx.test'],
};

describe('TLS reporting in Deliver (RFC 8460)', () => {
  it('counts each session under its policy and sends each domain that asks its report, by HTTPS and by mail', async () => {
    const { port, app } = await deliverer();
    for (const to of ['bob@sts.test', 'carol@testing.test', 'dave@plain.test', 'erin@quiet.test']) await send(port, to);
    await until(() => fleet.arrivals.filter((a) => /@(sts|testing|plain|quiet)\.test$/.test(a.rcptTos[0] ?? '')).length === 4, 15_000);

    const sent = await deliveryQueue(app).sendTlsReports();
    expect(
      sent
        .map(({ domain, to, ok }) => ({ domain, to: to.replace(/:\d+\//, ':PORT/'), ok }))
        .sort((a, b) => `${a.to} ${a.domain}`.localeCompare(`${b.to} ${b.domain}`)),
    ).toEqual(
      [
        { domain: 'plain.test', to: 'https://reports.test:PORT/v1/tlsrpt', ok: true },
        { domain: 'sts.test', to: 'https://reports.test:PORT/v1/tlsrpt', ok: true },
        { domain: 'testing.test', to: 'https://reports.test:PORT/v1/tlsrpt', ok: true },
        { domain: 'sts.test', to: 'mailto:tlsrpt@inbox.test', ok: true },
      ].sort((a, b) => `${a.to} ${a.domain}`.localeCompare(`${b.to} ${b.domain}`)),
    );
    expect(posted).toHaveLength(3);
    expect(reportFor('sts.test')).toEqual({
      ...HEAD,
      policies: [{ policy: STS_POLICY, summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 } }],
    });
    expect(reportFor('testing.test')).toEqual({
      ...HEAD,
      policies: [
        {
          policy: {
            'policy-type': 'sts',
            'policy-string': ['version: STSv1', 'mode: testing', 'mx: other-name.test', 'max_age: 86400'],
            'policy-domain': 'testing.test',
            'mx-host': ['other-name.test'],
          },
          summary: { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
          'failure-details': [
            {
              'result-type': 'certificate-host-mismatch',
              'receiving-mx-hostname': 'other-name.test',
              'receiving-ip': '127.0.0.3',
              'failed-session-count': 1,
              'failure-reason-code': 'ERR_TLS_CERT_ALTNAME_INVALID',
            },
          ],
        },
      ],
    });
    expect(reportFor('plain.test')).toEqual({
      ...HEAD,
      policies: [
        {
          policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'plain.test' },
          summary: { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
          'failure-details': [
            {
              'result-type': 'starttls-not-supported',
              'receiving-mx-hostname': 'plain-mx.test',
              'receiving-ip': '127.0.0.4',
              'failed-session-count': 1,
            },
          ],
        },
      ],
    });

    // The mailed copy: the same report, as RFC 8460 §5.3 wraps it.
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('tlsrpt@inbox.test')), 10_000);
    const mail = fleet.arrivals.find((a) => a.rcptTos.includes('tlsrpt@inbox.test'))!;
    expect(mail.mailFrom).toBe('noreply-tlsrpt@mta.test');
    const reportId = (posted.find((p) => JSON.stringify(p.report).includes('"sts.test"'))!.report as { 'report-id': string })['report-id'];
    expect(mail.body).toContain(`\r\nSubject: Report Domain: sts.test Submitter: mta.test Report-ID: <${reportId}>\r\n`);
    expect(mail.body).toContain('\r\nTLS-Report-Domain: sts.test\r\nTLS-Report-Submitter: mta.test\r\n');
    expect(mail.body).toContain('Content-Type: multipart/report; report-type="tlsrpt"');
    const base64 = /Content-Transfer-Encoding: base64\r\n\r\n([A-Za-z0-9+/=\r\n]+)--/.exec(mail.body)![1]!;
    const mailed = JSON.parse(gunzipSync(Buffer.from(base64, 'base64')).toString('utf8')) as Record<string, unknown>;
    expect(mailed).toEqual(posted.find((p) => p.report['report-id'] === reportId)!.report);

    // Sent once: the next call has nothing to say of these sessions.
    posted.length = 0;
    expect(await deliveryQueue(app).sendTlsReports()).toEqual([]);
    expect(posted).toEqual([]);
  }, 30_000);

  it('a policy that names no exchanger, one that cannot be fetched, one on a host not verified, one not valid: failures of their kind; a refusing collector is told', async () => {
    const { port, app } = await deliverer();
    for (const to of ['bob@nomatch.test', 'bob@unfetched.test', 'bob@invalid.test', 'bob@webpki.test']) await send(port, to);
    await until(() => fleet.arrivals.filter((a) => /@(unfetched|invalid|webpki)\.test$/.test(a.rcptTos[0] ?? '')).length === 3, 15_000);
    // The message to nomatch.test waits (4.7.5) once its first attempt is over.
    for (let i = 0; i < 200; i++) {
      const listed = await deliveryQueue(app).list();
      if (listed.some((m) => m.entry.recipients[0]?.address === 'bob@nomatch.test' && m.entry.attempts > 0 && !m.active)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const sent = await deliveryQueue(app).sendTlsReports();
    expect(sent.find((r) => r.domain === 'unfetched.test')).toMatchObject({
      ok: false,
      error: 'refusing.test:' + String((https.address() as AddressInfo).port) + ' answered 503',
    });
    expect(reportFor('nomatch.test').policies).toEqual([
      {
        policy: {
          'policy-type': 'sts',
          'policy-string': ['version: STSv1', 'mode: enforce', 'mx: *.elsewhere.example', 'max_age: 86400'],
          'policy-domain': 'nomatch.test',
          'mx-host': ['*.elsewhere.example'],
        },
        summary: { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
        'failure-details': [
          {
            'result-type': 'validation-failure',
            'receiving-mx-hostname': 'mx.test',
            'failed-session-count': 1,
            'failure-reason-code': 'the policy names none of the exchangers',
          },
        ],
      },
    ]);
    expect(reportFor('invalid.test').policies).toEqual([
      {
        policy: { 'policy-type': 'sts', 'policy-domain': 'invalid.test', 'mx-host': [] },
        summary: { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
        'failure-details': [
          {
            'result-type': 'sts-policy-invalid',
            'receiving-mx-hostname': 'mx.test',
            'receiving-ip': '127.0.0.3',
            'failed-session-count': 1,
            'failure-reason-code': 'Invalid version field',
          },
        ],
      },
    ]);
    const refused = posted.find((p) => JSON.stringify(p.report).includes('"unfetched.test"'))!.report as {
      policies: { 'failure-details': { 'result-type': string }[] }[];
    };
    expect(refused.policies[0]!['failure-details'][0]!['result-type']).toBe('sts-policy-fetch-error');
    const webpki = reportFor('webpki.test') as {
      policies: { 'failure-details': { 'result-type': string; 'failure-reason-code': string }[] }[];
    };
    expect(webpki.policies[0]!['failure-details'][0]).toMatchObject({ 'result-type': 'sts-webpki-invalid', 'failed-session-count': 1 });
  }, 30_000);

  it("mails a report to a domain whose own policy fails its exchangers, and leaves the report's session out of the next report (RFC 8460 §3)", async () => {
    const { port, app } = await deliverer();
    await send(port, 'bob@brokensts.test');
    // Bob's message waits (4.7.5): the enforced policy names none of the domain's exchangers.
    for (let i = 0; i < 200; i++) {
      const listed = await deliveryQueue(app).list();
      if (listed.some((m) => m.entry.recipients[0]?.address === 'bob@brokensts.test' && m.entry.attempts > 0 && !m.active)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const sent = await deliveryQueue(app).sendTlsReports();
    expect(sent.map(({ domain, to, ok }) => ({ domain, to, ok }))).toEqual([
      { domain: 'brokensts.test', to: 'mailto:tlsrpt@brokensts.test', ok: true },
    ]);
    // The report itself goes, to the exchanger the policy does not name.
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('tlsrpt@brokensts.test')), 10_000);
    const mail = fleet.arrivals.find((a) => a.rcptTos.includes('tlsrpt@brokensts.test'))!;
    expect(mail.body).toContain('\r\nTLS-Report-Domain: brokensts.test\r\n');
    // Bob's message still waits: only the report goes past the policy.
    let waiting: string[][] = [];
    for (let i = 0; i < 100; i++) {
      waiting = (await deliveryQueue(app).list()).map((m) => m.entry.recipients.map((r) => r.address));
      if (waiting.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(waiting).toEqual([['bob@brokensts.test']]);
    // Its session is not counted: the next report has nothing to say.
    expect(await deliveryQueue(app).sendTlsReports()).toEqual([]);
  }, 30_000);

  it('counts not yet reported are kept when the server stops and reported by the next one', async () => {
    const queue = tempQueue();
    cleanups.push(queue.cleanup);
    const first = await deliverer({ queueDir: queue.dir });
    await send(first.port, 'kept@sts.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('kept@sts.test')), 10_000);
    await first.server.close();
    const kept = readdirSync(join(queue.dir, 'tls-reports'));
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(/^\d+-\d+-[0-9a-f]{8}\.json$/);

    const second = await deliverer({ queueDir: queue.dir });
    const sent = await deliveryQueue(second.app).sendTlsReports();
    expect(sent.map((r) => r.domain).sort()).toEqual(['sts.test', 'sts.test']);
    expect(reportFor('sts.test')).toEqual({
      ...HEAD,
      policies: [{ policy: STS_POLICY, summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 } }],
    });
    expect(readdirSync(join(queue.dir, 'tls-reports'))).toEqual([]);
  }, 30_000);

  it("posts no report to a private address unless told to (a record could aim the POST at this host's own network)", async () => {
    const { port, app } = await deliverer({ httpsToPrivateAddresses: false });
    await send(port, 'private@testing.test');
    await until(() => fleet.arrivals.some((a) => a.rcptTos.includes('private@testing.test')), 10_000);
    const sent = await deliveryQueue(app).sendTlsReports();
    expect(sent.map(({ domain, ok, error }) => ({ domain, ok, error }))).toEqual([
      { domain: 'testing.test', ok: false, error: 'reports.test is a private address (127.0.0.1): not posted' },
    ]);
    expect(posted).toEqual([]);
  });

  it('tlsReportFrom must be an address', async () => {
    await expect(deliverer({ tlsReportFrom: 'not an address' })).rejects.toThrow(/tlsReportFrom must be an address/);
  });
});
