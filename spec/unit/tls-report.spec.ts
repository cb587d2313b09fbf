/** SMTP TLS reports (RFC 8460), the pure part: the tally, the JSON report, the `_smtp._tls` record, the mail. */
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_FAILURE_DETAILS,
  MAX_REPORT_DOMAINS,
  reportAddresses,
  reportMail,
  tlsReport,
  TlsTally,
  type TlsSession,
} from '../../lib/outbound/tls-report.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 4, 10, 30);
const STS = {
  type: 'sts' as const,
  text: ['version: STSv1', 'mode: enforce', 'mx: mx.example.net', 'max_age: 86400'],
  mx: ['mx.example.net'],
};
const reporter = { organization: 'Example Sender', contact: 'postmaster@sender.example', submitter: 'sender.example' };

function report(tally: TlsTally, domain: string) {
  const [start, period] = tally.take(Infinity)[0]!;
  return tlsReport(reporter, domain, period.get(domain)!.values(), { start, end: start + DAY }, 'r-1');
}

describe('TlsTally and tlsReport', () => {
  it('counts sessions per domain and policy, in UTC days, and makes the report RFC 8460 §4.4 shows', () => {
    const tally = new TlsTally(DAY);
    const expired: TlsSession = {
      domain: 'Example.NET',
      policy: STS,
      failure: {
        type: 'certificate-expired',
        mxHost: 'mx.example.net',
        receivingIp: '192.0.2.7',
        reason: 'CERT_HAS_EXPIRED',
      },
    };
    tally.record({ domain: 'example.net', policy: STS }, T0);
    tally.record({ domain: 'example.net', policy: STS }, T0 + 1000);
    tally.record(expired, T0 + 2000);
    tally.record(expired, T0 + 3000);
    tally.record({ domain: 'example.net', policy: { type: 'no-policy-found' } }, T0 + 4000);
    // The next day is the next report.
    tally.record({ domain: 'example.net', policy: STS }, T0 + DAY);
    const [start, period] = tally.take(Date.UTC(2026, 11, 5))[0]!;
    expect(start).toBe(Date.UTC(2026, 11, 4));
    expect(tlsReport(reporter, 'example.net', period.get('example.net')!.values(), { start, end: start + DAY }, 'r-1')).toEqual({
      'organization-name': 'Example Sender',
      'date-range': { 'start-datetime': '2026-12-04T00:00:00Z', 'end-datetime': '2026-12-05T00:00:00Z' },
      'contact-info': 'postmaster@sender.example',
      'report-id': 'r-1',
      policies: [
        {
          policy: {
            'policy-type': 'sts',
            'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx.example.net', 'max_age: 86400'],
            'policy-domain': 'example.net',
            'mx-host': ['mx.example.net'],
          },
          summary: { 'total-successful-session-count': 2, 'total-failure-session-count': 2 },
          'failure-details': [
            {
              'result-type': 'certificate-expired',
              'receiving-mx-hostname': 'mx.example.net',
              'receiving-ip': '192.0.2.7',
              'failed-session-count': 2,
              'failure-reason-code': 'CERT_HAS_EXPIRED',
            },
          ],
        },
        {
          policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'example.net' },
          summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 },
        },
      ],
    });
    expect(tally.empty).toBe(false);
    expect(tally.take(Infinity).map(([s]) => s)).toEqual([Date.UTC(2026, 11, 5)]);
    expect(tally.empty).toBe(true);
  });

  it('a report id names the day and the submitter when none is given', () => {
    const tally = new TlsTally(DAY);
    tally.record({ domain: 'example.net', policy: STS }, T0);
    const [start, period] = tally.take(Infinity)[0]!;
    const made = tlsReport(reporter, 'example.net', period.get('example.net')!.values(), { start, end: start + DAY });
    expect(made['report-id']).toMatch(/^2026-12-04\.[0-9a-f]{16}@sender\.example$/);
  });

  it('is bounded: domains per period and failure details per policy', () => {
    const tally = new TlsTally(DAY);
    for (let i = 0; i < MAX_REPORT_DOMAINS + 5; i++) tally.record({ domain: `d${i}.example`, policy: { type: 'no-policy-found' } }, T0);
    expect(tally.dropped).toBe(5);
    for (let i = 0; i < MAX_FAILURE_DETAILS + 10; i++)
      tally.record(
        { domain: 'd0.example', policy: STS, failure: { type: 'validation-failure', receivingIp: `192.0.2.${i % 256}`, reason: `r${i}` } },
        T0,
      );
    const made = report(tally, 'd0.example') as { policies: { summary: Record<string, number>; 'failure-details'?: unknown[] }[] };
    const sts = made.policies.find((p) => p['failure-details'] !== undefined)!;
    expect(sts.summary['total-failure-session-count']).toBe(MAX_FAILURE_DETAILS + 10);
    expect(sts['failure-details']).toHaveLength(MAX_FAILURE_DETAILS);
  });

  it('kept as JSON and merged back, it makes the same report (any split of the sessions between two tallies)', () => {
    const session = fc.record({
      ok: fc.boolean(),
      sts: fc.boolean(),
      ip: fc.constantFrom('192.0.2.1', '192.0.2.2'),
      first: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(session, { maxLength: 30 }), (sessions) => {
        const whole = new TlsTally(DAY);
        const a = new TlsTally(DAY);
        const b = new TlsTally(DAY);
        for (const s of sessions) {
          const recorded: TlsSession = {
            domain: 'example.net',
            policy: s.sts ? STS : { type: 'no-policy-found' },
            failure: s.ok ? undefined : { type: 'starttls-not-supported', receivingIp: s.ip },
          };
          whole.record(recorded, T0);
          (s.first ? a : b).record(recorded, T0);
        }
        a.merge(JSON.parse(JSON.stringify(b.toJSON())));
        const merged = a.empty ? undefined : report(a, 'example.net');
        const expected = whole.empty ? undefined : report(whole, 'example.net');
        const sorted = (r: unknown) =>
          r === undefined
            ? r
            : (r as { policies: { policy: { 'policy-type': string } }[] }).policies
                .map((p) =>
                  JSON.stringify(p, (k, v: unknown) =>
                    k === 'failure-details' ? [...(v as unknown[])].map((d) => JSON.stringify(d)).sort() : v,
                  ),
                )
                .sort();
        expect(sorted(merged)).toEqual(sorted(expected));
      }),
      { numRuns: 200 },
    );
  });
});

describe('reportAddresses (the _smtp._tls record, RFC 8460 §3)', () => {
  it('reads mailto and https addresses', () => {
    expect(reportAddresses(['v=TLSRPTv1; rua=mailto:tlsrpt@example.net,https://reports.example.net/v1/tlsrpt'])).toEqual({
      mailto: ['tlsrpt@example.net'],
      https: ['https://reports.example.net/v1/tlsrpt'],
    });
    expect(reportAddresses(['v=TLSRPTv1;rua=mailto:a%2Bb@example.net?subject=x'])).toEqual({ mailto: ['a+b@example.net'], https: [] });
  });

  it('uses five addresses of a record at most, mailto first', () => {
    const many = Array.from({ length: 8 }, (_, i) => `mailto:r${i}@example.net`).join(',');
    expect(reportAddresses([`v=TLSRPTv1; rua=https://a.example/,${many}`])).toEqual({
      mailto: ['r0@example.net', 'r1@example.net', 'r2@example.net', 'r3@example.net', 'r4@example.net'],
      https: [],
    });
    expect(reportAddresses(['v=TLSRPTv1; rua=https://a.example/,mailto:r@example.net'])).toEqual({
      mailto: ['r@example.net'],
      https: ['https://a.example/'],
    });
  });

  it('asks for nothing: no record, two records, another version first, no usable address', () => {
    expect(reportAddresses([])).toBeUndefined();
    expect(reportAddresses(['v=spf1 -all'])).toBeUndefined();
    expect(reportAddresses(['v=TLSRPTv1; rua=mailto:a@example.net', 'v=TLSRPTv1; rua=mailto:b@example.net'])).toBeUndefined();
    expect(reportAddresses(['rua=mailto:a@example.net; v=TLSRPTv1'])).toBeUndefined();
    expect(reportAddresses(['v=TLSRPTv1; rua=http://insecure.example/,ftp://x/'])).toBeUndefined();
  });
});

describe('reportMail (RFC 8460 §5.3)', () => {
  it('a multipart/report of type tlsrpt with the gzipped report named as the RFC asks', () => {
    const json = JSON.stringify({ 'report-id': 'r-1' });
    const mail = reportMail({
      from: 'noreply-tlsrpt@sender.example',
      to: 'tlsrpt@example.net',
      submitter: 'sender.example',
      domain: 'example.net',
      reportId: 'r-1',
      range: { start: Date.UTC(2026, 11, 4), end: Date.UTC(2026, 11, 5) },
      gzipped: gzipSync(json),
      hostname: 'mta.sender.example',
    }).toString('latin1');
    const [head] = mail.split('\r\n\r\n');
    expect(head).toContain('\r\nSubject: Report Domain: example.net Submitter: sender.example Report-ID: <r-1>\r\n');
    expect(head).toContain('\r\nTLS-Report-Domain: example.net\r\nTLS-Report-Submitter: sender.example\r\n');
    expect(head).toMatch(/\r\nContent-Type: multipart\/report; report-type="tlsrpt"; boundary="=_sirocco_[0-9a-f]{24}"$/);
    expect(mail).toMatch(/filename="sender\.example!example\.net!1796342400!1796428800![0-9a-f]{8}\.json\.gz"/);
    const base64 = /Content-Transfer-Encoding: base64\r\n\r\n([A-Za-z0-9+/=\r\n]+)--/.exec(mail)![1]!;
    expect(base64.split('\r\n').every((line) => line.length <= 76)).toBe(true);
    expect(gunzipSync(Buffer.from(base64, 'base64')).toString()).toBe(json);
    expect(mail.endsWith('--\r\n')).toBe(true);
  });
});
