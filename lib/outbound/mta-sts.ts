/**
 * MTA-STS (RFC 8461) for the outbound queue: a destination's policy, announced by the
 * `_mta-sts.<domain>` TXT record and fetched over verified HTTPS from `mta-sts.<domain>`, kept
 * for its `max_age` and fetched again when the record's id changes. In `enforce` mode only the
 * exchangers the policy names are used, over verified TLS; in `testing` mode mail goes as before
 * and what would have failed is logged. Parsing and matching are mailauth's; the fetch is bounded
 * here (time, size, no redirect).
 */
import type { Logger } from 'pino';
import { mailauthSts } from '../auth/mailauth.js';
import { boundedHttps } from './https.js';
import { certificateProblem, type TlsResultType } from './tls-report.js';

/** What the queue needs to know of a destination's policy. */
export interface StsPolicy {
  /** `enforce`, `testing` or `none`. */
  readonly mode: 'enforce' | 'testing' | 'none';
  /** The policy's `mx` patterns. */
  readonly mx: readonly string[];
  /** The TXT record's id it was fetched for. */
  readonly id: string;
  /** Until when it may be used without asking again, ms since the epoch. */
  readonly expires: number;
  /** The policy's lines, for TLS reports. */
  readonly text?: readonly string[] | undefined;
  /** With mode `none`: the domain announces a policy that could not be had, and why (for TLS reports). */
  readonly failure?: { readonly type: TlsResultType; readonly reason: string } | undefined;
}

/** How policies are looked up. */
export interface MtaStsOptions {
  /** The DNS lookup (TXT and addresses), as mailauth asks for it. */
  readonly lookup: (name: string, type: string) => Promise<never[]>;
  /** The HTTPS port of policy hosts. Default 443 (another one only for tests). */
  readonly port?: number | undefined;
  /** Extra TLS options for the policy fetch (`ca` for a private CA); the certificate is always verified. */
  readonly tls?: Readonly<Record<string, unknown>> | undefined;
  /** Whether a policy host may be at a loopback, private or link-local address. Default false. */
  readonly privateAddresses?: boolean | undefined;
  /** The longest a fetch may take, in ms. Default 10 000. */
  readonly timeoutMs?: number | undefined;
  readonly logger: Logger;
}

/** RFC 8461 §3.2: a policy is at most 64 KiB. */
const MAX_POLICY = 64 * 1024;
/** RFC 8461 §3.2: max_age at most a year. */
const MAX_AGE_S = 31_557_600;

const NONE: StsPolicy = { mode: 'none', mx: [], id: '', expires: 0 };

/** The policies of the destinations a queue sends to, cached for their max_age. */
export class MtaSts {
  readonly #options: MtaStsOptions;
  readonly #cache = new Map<string, StsPolicy>();

  constructor(options: MtaStsOptions) {
    this.#options = options;
  }

  /** The policy that applies to `domain` now (`none` when it has none, or none could be had). */
  async policy(domain: string): Promise<StsPolicy> {
    const { resolvePolicy, parsePolicy } = await mailauthSts();
    const known = this.#cache.get(domain);
    let id: string | false;
    try {
      id = await resolvePolicy(domain, { resolver: this.#options.lookup });
    } catch (err) {
      // RFC 8461 §5.1: a policy in the cache still applies when its record cannot be had.
      this.#options.logger.warn({ domain, err: (err as Error).message }, 'MTA-STS record lookup failed');
      return known !== undefined && known.expires > Date.now() ? known : NONE;
    }
    if (id === false) {
      if (known !== undefined && known.expires > Date.now()) return known;
      this.#cache.delete(domain);
      return NONE;
    }
    if (known !== undefined && known.id === id && known.expires > Date.now()) return known;
    let text: string;
    try {
      text = await this.#fetch(domain);
    } catch (err) {
      const reason = (err as Error).message;
      this.#options.logger.warn({ domain, err: reason }, 'MTA-STS policy fetch failed');
      // A policy host whose certificate did not verify is RFC 8460's `sts-webpki-invalid`.
      const type =
        certificateProblem((err as { code?: string }).code, reason) === undefined ? 'sts-policy-fetch-error' : 'sts-webpki-invalid';
      return known !== undefined && known.expires > Date.now() ? known : { ...NONE, failure: { type, reason } };
    }
    try {
      const parsed = parsePolicy(text);
      const maxAge = Math.min(Math.max(Number(parsed.maxAge) || 0, 0), MAX_AGE_S);
      const mode = parsed.mode === 'enforce' || parsed.mode === 'testing' ? parsed.mode : 'none';
      const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
      const policy: StsPolicy = { mode, mx: parsed.mx ?? [], id, expires: Date.now() + maxAge * 1000, text: lines };
      this.#cache.set(domain, policy);
      return policy;
    } catch (err) {
      const reason = (err as Error).message;
      this.#options.logger.warn({ domain, err: reason }, 'MTA-STS policy is not valid');
      return known !== undefined && known.expires > Date.now() ? known : { ...NONE, failure: { type: 'sts-policy-invalid', reason } };
    }
  }

  /** The exchangers a policy's `mx` patterns name. */
  async named<T extends { readonly name: string }>(policy: StsPolicy, exchangers: readonly T[]): Promise<T[]> {
    const { validateMx } = await mailauthSts();
    return exchangers.filter((e) => validateMx(e.name, { mode: policy.mode, mx: [...policy.mx] }).valid);
  }

  /** `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`: verified TLS, 2xx only, no redirect, bounded in time and size. */
  async #fetch(domain: string): Promise<string> {
    const answer = await boundedHttps({
      host: `mta-sts.${domain}`,
      port: this.#options.port ?? 443,
      path: '/.well-known/mta-sts.txt',
      maxBytes: MAX_POLICY,
      timeoutMs: this.#options.timeoutMs ?? 10_000,
      tls: this.#options.tls,
      lookup: this.#options.lookup,
      privateAddresses: this.#options.privateAddresses,
    });
    return answer.toString('utf8');
  }
}
