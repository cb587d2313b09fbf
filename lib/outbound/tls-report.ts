/**
 * SMTP TLS reporting (RFC 8460), the pure part: the tally of outbound TLS sessions per policy
 * domain and reporting period, the JSON report made from it, the `_smtp._tls` record that says
 * where reports go, and the mail that carries one. What is counted and sent, and when, is
 * {@link TlsReporter}'s business.
 */
import { randomBytes } from 'node:crypto';

/** Why a session failed, in RFC 8460 §4.3's words. */
export type TlsResultType =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid';

/** Node's certificate verification errors, as RFC 8460 §4.3 names them. */
const CERTIFICATE_PROBLEMS: Readonly<Record<string, TlsResultType>> = {
  CERT_HAS_EXPIRED: 'certificate-expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'certificate-host-mismatch',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate-not-trusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate-not-trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate-not-trusted',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate-not-trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate-not-trusted',
  CERT_UNTRUSTED: 'certificate-not-trusted',
  CERT_REJECTED: 'certificate-not-trusted',
  CERT_NOT_YET_VALID: 'certificate-not-trusted',
  CERT_SIGNATURE_FAILURE: 'certificate-not-trusted',
  INVALID_CA: 'certificate-not-trusted',
  CERT_CHAIN_TOO_LONG: 'certificate-not-trusted',
  CERT_REVOKED: 'certificate-not-trusted',
};

/** The same, told by the words of an error that kept no code. */
const CERTIFICATE_MESSAGES: readonly (readonly [RegExp, TlsResultType])[] = [
  [/certificate has expired/i, 'certificate-expired'],
  [/does not match certificate|altnames/i, 'certificate-host-mismatch'],
  [/self[- ]signed|unable to (?:verify|get)|certificate (?:is not yet valid|signature)/i, 'certificate-not-trusted'],
];

/** The RFC 8460 failure type of a certificate that did not verify, from Node's error code or its words; `undefined`: not a certificate's fault. */
export function certificateProblem(code: string | undefined, message = ''): TlsResultType | undefined {
  if (code !== undefined && code in CERTIFICATE_PROBLEMS) return CERTIFICATE_PROBLEMS[code];
  return CERTIFICATE_MESSAGES.find(([pattern]) => pattern.test(message))?.[1];
}

/** The policy a session ran under: the destination's MTA-STS policy, or none. */
export type TlsPolicy =
  | { readonly type: 'sts'; readonly text?: readonly string[] | undefined; readonly mx: readonly string[] }
  | { readonly type: 'no-policy-found' };

/** One outbound session's TLS outcome, as counted for its policy domain. */
export interface TlsSession {
  /** The recipient domain (the policy domain). */
  readonly domain: string;
  readonly policy: TlsPolicy;
  /** Why it failed; none: TLS was negotiated as the policy asks. */
  readonly failure?:
    | {
        readonly type: TlsResultType;
        readonly mxHost?: string | undefined;
        readonly receivingIp?: string | undefined;
        /** Free text for the domain's operator (`failure-reason-code`). */
        readonly reason?: string | undefined;
      }
    | undefined;
}

interface Detail {
  readonly type: TlsResultType;
  readonly mxHost: string | undefined;
  readonly receivingIp: string | undefined;
  readonly reason: string | undefined;
  count: number;
}

/** One policy's counts for one domain and period. */
export interface PolicyTally {
  readonly policy: TlsPolicy;
  ok: number;
  failed: number;
  readonly details: Map<string, Detail>;
}

/** One period's counts: policy domain → (policy → counts). */
export type PeriodTally = Map<string, Map<string, PolicyTally>>;

/** Policy domains counted in one period at most: past them a session is not counted (one client cannot make the tally grow without end). */
export const MAX_REPORT_DOMAINS = 10_000;
/** Distinct failure details kept per policy; past them a failure counts in the summary only. */
export const MAX_FAILURE_DETAILS = 100;

/**
 * The counts of outbound TLS sessions per reporting period (periods of `periodMs`, aligned to
 * the epoch: with a day, UTC days, as RFC 8460 §4.1 asks).
 */
export class TlsTally {
  readonly periodMs: number;
  readonly #periods = new Map<number, PeriodTally>();
  /** Sessions not counted because a period reached {@link MAX_REPORT_DOMAINS}. */
  dropped = 0;

  constructor(periodMs: number) {
    this.periodMs = periodMs;
  }

  /** The start of the period `at` falls in. */
  periodOf(at: number): number {
    return at - (at % this.periodMs);
  }

  /** Counts one session, in the period of `at`. */
  record(session: TlsSession, at = Date.now()): void {
    const start = this.periodOf(at);
    let period = this.#periods.get(start);
    if (period === undefined) {
      period = new Map();
      this.#periods.set(start, period);
    }
    this.#add(period, session.domain.toLowerCase(), policyKey(session.policy), session.policy, session.failure === undefined ? 1 : 0, 0);
    const tally = period.get(session.domain.toLowerCase())?.get(policyKey(session.policy));
    if (tally === undefined || session.failure === undefined) return;
    tally.failed++;
    // The reason may be an exchanger's reply: kept short.
    const f = { ...session.failure, reason: session.failure.reason?.slice(0, 200) };
    const key = [f.type, f.mxHost, f.receivingIp, f.reason].join('\u0000');
    const detail = tally.details.get(key);
    if (detail !== undefined) detail.count++;
    else if (tally.details.size < MAX_FAILURE_DETAILS)
      tally.details.set(key, {
        type: f.type,
        mxHost: f.mxHost,
        receivingIp: f.receivingIp,
        reason: f.reason,
        count: 1,
      });
  }

  /** Takes the periods that began before `before` out of the tally, oldest first. */
  take(before: number): [number, PeriodTally][] {
    const taken = [...this.#periods].filter(([start]) => start < before).sort(([a], [b]) => a - b);
    for (const [start] of taken) this.#periods.delete(start);
    return taken;
  }

  /** Whether nothing is counted. */
  get empty(): boolean {
    return this.#periods.size === 0;
  }

  /** The whole tally as plain JSON (to keep it in a file across a restart). */
  toJSON(): unknown {
    return [...this.#periods].map(([start, period]) => [
      start,
      [...period].map(([domain, policies]) => [domain, [...policies.values()].map((t) => ({ ...t, details: [...t.details.values()] }))]),
    ]);
  }

  /** Adds a tally kept by {@link toJSON} (another process's, or this one's before a restart). */
  merge(json: unknown): void {
    for (const [start, domains] of json as [number, [string, (Omit<PolicyTally, 'details'> & { details: Detail[] })[]][]][]) {
      let period = this.#periods.get(start);
      if (period === undefined) {
        period = new Map();
        this.#periods.set(start, period);
      }
      for (const [domain, tallies] of domains)
        for (const t of tallies) {
          this.#add(period, domain, policyKey(t.policy), t.policy, t.ok, t.failed);
          const mine = period.get(domain)?.get(policyKey(t.policy));
          if (mine === undefined) continue;
          for (const d of t.details) {
            const key = [d.type, d.mxHost, d.receivingIp, d.reason].join('\u0000');
            const known = mine.details.get(key);
            if (known !== undefined) known.count += d.count;
            else if (mine.details.size < MAX_FAILURE_DETAILS) mine.details.set(key, { ...d });
          }
        }
    }
  }

  #add(period: PeriodTally, domain: string, key: string, policy: TlsPolicy, ok: number, failed: number): void {
    let policies = period.get(domain);
    if (policies === undefined) {
      if (period.size >= MAX_REPORT_DOMAINS) {
        this.dropped++;
        return;
      }
      policies = new Map();
      period.set(domain, policies);
    }
    const tally = policies.get(key);
    if (tally === undefined) policies.set(key, { policy, ok, failed, details: new Map() });
    else {
      tally.ok += ok;
      tally.failed += failed;
    }
  }
}

function policyKey(policy: TlsPolicy): string {
  return policy.type === 'sts' ? `sts\u0000${(policy.text ?? []).join('\n')}\u0000${policy.mx.join(',')}` : policy.type;
}

/** Who reports: the organization, how to reach it, the domain reports come from. */
export interface Reporter {
  readonly organization: string;
  readonly contact: string;
  /** The submitter's domain (in the subject and the file name). */
  readonly submitter: string;
}

/** The JSON report (RFC 8460 §4) for one policy domain over one period. */
export function tlsReport(
  reporter: Reporter,
  domain: string,
  policies: Iterable<PolicyTally>,
  range: { readonly start: number; readonly end: number },
  reportId = `${new Date(range.start).toISOString().slice(0, 10)}.${randomBytes(8).toString('hex')}@${reporter.submitter}`,
): Record<string, unknown> {
  return {
    'organization-name': reporter.organization,
    'date-range': { 'start-datetime': rfc3339(range.start), 'end-datetime': rfc3339(range.end) },
    'contact-info': reporter.contact,
    'report-id': reportId,
    policies: [...policies].map((t) => ({
      policy: {
        'policy-type': t.policy.type,
        ...(t.policy.type === 'sts' && t.policy.text !== undefined ? { 'policy-string': [...t.policy.text] } : {}),
        'policy-domain': domain,
        ...(t.policy.type === 'sts' ? { 'mx-host': [...t.policy.mx] } : {}),
      },
      summary: { 'total-successful-session-count': t.ok, 'total-failure-session-count': t.failed },
      ...(t.details.size === 0
        ? {}
        : {
            'failure-details': [...t.details.values()].map((d) => ({
              'result-type': d.type,
              ...(d.mxHost === undefined ? {} : { 'receiving-mx-hostname': d.mxHost }),
              ...(d.receivingIp === undefined ? {} : { 'receiving-ip': d.receivingIp }),
              'failed-session-count': d.count,
              ...(d.reason === undefined ? {} : { 'failure-reason-code': d.reason }),
            })),
          }),
    })),
  };
}

/** A time as RFC 3339 without fractions: `2026-12-05T00:00:00Z`. */
function rfc3339(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** Report addresses of one record used at most (`mailto:` first, then `https:`). */
export const MAX_ADDRESSES = 5;

/** Where a domain wants its reports: `mailto:` addresses and `https:` URLs. */
export interface ReportAddresses {
  readonly mailto: readonly string[];
  readonly https: readonly string[];
}

/**
 * The `rua` of a domain's `_smtp._tls` TXT records (RFC 8460 §3), or `undefined` when it asks for
 * no reports: no record, several, or one that is not `v=TLSRPTv1` first. Unknown schemes are left out.
 */
export function reportAddresses(records: readonly string[]): ReportAddresses | undefined {
  const ours = records.filter((r) => /^v\s*=\s*TLSRPTv1\s*(;|$)/.test(r));
  if (ours.length !== 1) return undefined;
  const fields = new Map<string, string>();
  for (const part of ours[0]!.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const mailto: string[] = [];
  const https: string[] = [];
  for (const uri of (fields.get('rua') ?? '').split(',').map((u) => u.trim())) {
    if (/^mailto:/i.test(uri)) {
      const address = decodeURIComponent(uri.slice(7).split('?')[0] ?? '');
      if (/^[^@\s<>]+@[^@\s<>]+$/.test(address)) mailto.push(address);
    } else if (/^https:\/\//i.test(uri)) {
      try {
        https.push(new URL(uri).href);
      } catch {
        // not a URL: left out
      }
    }
  }
  if (mailto.length === 0 && https.length === 0) return undefined;
  // A record may not make this host send a report to more than a few places.
  return { mailto: mailto.slice(0, MAX_ADDRESSES), https: https.slice(0, MAX_ADDRESSES - Math.min(mailto.length, MAX_ADDRESSES)) };
}

/**
 * The mail that carries a report (RFC 8460 §5.3): a multipart/report of type `tlsrpt` with a
 * line for people and the report gzipped as `application/tlsrpt+gzip`, named
 * `submitter!domain!begin!end!id.json.gz`.
 */
export function reportMail(options: {
  readonly from: string;
  readonly to: string;
  readonly submitter: string;
  readonly domain: string;
  readonly reportId: string;
  readonly range: { readonly start: number; readonly end: number };
  readonly gzipped: Buffer;
  readonly hostname: string;
}): Buffer {
  const { from, to, submitter, domain, reportId, range, gzipped, hostname } = options;
  const boundary = `=_sirocco_${randomBytes(12).toString('hex')}`;
  const file = `${submitter}!${domain}!${Math.floor(range.start / 1000)}!${Math.floor(range.end / 1000)}!${randomBytes(4).toString('hex')}.json.gz`;
  const base64 = gzipped.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  const lines = [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: Report Domain: ${domain} Submitter: ${submitter} Report-ID: <${reportId}>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${hostname}>`,
    `TLS-Report-Domain: ${domain}`,
    `TLS-Report-Submitter: ${submitter}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `The SMTP TLS report (RFC 8460) of ${submitter} for ${domain}, ${rfc3339(range.start)} to ${rfc3339(range.end)}, is attached.`,
    '',
    `--${boundary}`,
    `Content-Type: application/tlsrpt+gzip; name="${file}"`,
    `Content-Disposition: attachment; filename="${file}"`,
    'Content-Transfer-Encoding: base64',
    '',
    `${base64}--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}
