/**
 * Mail authentication on the way in: SPF (RFC 7208) for the MAIL FROM identity and the HELO name,
 * every DKIM signature (RFC 6376, RSA and Ed25519 of RFC 8463), DMARC (RFC 7489) and the ARC
 * chain (RFC 8617), verified by mailauth over our resolver, and given to the handler as typed data
 * with the `Authentication-Results` field (RFC 8601) that says the same.
 */
import { mailauth } from './mailauth.js';
import type { Readable } from 'node:stream';
import { cachedResolver, type Lookup } from './resolver.js';

/**
 * One method's verdict (RFC 8601 §2.7): `temperror` when DNS did not answer in time.
 *
 * @example
 * ```ts
 * const spf: AuthResult = this.request.authentication?.spf.result ?? 'none';
 * ```
 */
export type AuthResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror' | 'policy';

/**
 * What mail authentication found for one message.
 *
 * @example
 * ```ts
 * const auth: MessageAuthentication | undefined = this.request.authentication;
 * if (auth?.dmarc.result === 'pass') console.log('From: is', auth.dmarc.domain);
 * ```
 */
export interface MessageAuthentication {
  /** SPF for the MAIL FROM domain (or, for the null sender, the HELO name). */
  readonly spf: {
    /** The verdict. */
    readonly result: AuthResult;
    /** The domain checked. */
    readonly domain: string;
    /** Why, in words (the record's verdict, or the DNS failure). */
    readonly reason: string;
  };
  /** Each DKIM signature, in the order of the message's fields; none without signatures. */
  readonly dkim: readonly {
    /** The verdict. */
    readonly result: AuthResult;
    /** The signing domain (d=). */
    readonly domain: string;
    /** The selector (s=). */
    readonly selector: string;
    /** The algorithm (a=), `rsa-sha256` or `ed25519-sha256`. */
    readonly algorithm: string;
    /** Whether d= aligns with the From: domain (DMARC's relaxed alignment). */
    readonly aligned: boolean;
    /** Why, in words. */
    readonly reason: string;
  }[];
  /** DMARC for the From: domain. */
  readonly dmarc: {
    /** The verdict; `none` when the domain publishes no policy. */
    readonly result: AuthResult;
    /** The From: domain. */
    readonly domain: string;
    /** The policy that applies to it (`sp=` for a subdomain), when one is published. */
    readonly policy: 'none' | 'quarantine' | 'reject' | undefined;
    /** Why, in words. */
    readonly reason: string;
  };
  /** The ARC chain. */
  readonly arc: {
    /** The verdict; `none` without a chain. */
    readonly result: AuthResult;
    /** The chain's last instance (i=), 0 without a chain. */
    readonly instance: number;
    /** Why, in words. */
    readonly reason: string;
  };
  /** Whether DMARC's policy asks the receiver to quarantine this message (it failed under `p=quarantine`). */
  readonly quarantine: boolean;
  /** The `Authentication-Results` field saying all of this, folded, ending in CRLF. */
  readonly header: string;
  /**
   * With the `arcSeal` setting, and a chain that was absent or valid: the next ARC set
   * (`ARC-Seal`, `ARC-Message-Signature`, `ARC-Authentication-Results`, RFC 8617) to put on top
   * of the message when it is sent on; `''` otherwise.
   */
  readonly arcSet: string;
}

/** How a {@link Verifier} checks. */
export interface VerifierOptions {
  /** The authserv-id of the fields it writes and of those it removes. */
  readonly authservId: string;
  /** DNS servers, `address` or `address:port`; the system's when unset. */
  readonly dnsServers: readonly string[] | undefined;
  /** The time for all of one message's checks, in ms; past it every unfinished method is `temperror`. */
  readonly timeoutMs: number;
  /** Seal with this key (RSA) as `domain`'s `selector`: the results then carry the next ARC set. */
  readonly seal?: { readonly domain: string; readonly selector: string; readonly pem: string } | undefined;
}

/** Where a message came from, as SPF asks. */
export interface MessageOrigin {
  /** The client's address (PROXY's or XCLIENT's when those are in use). */
  readonly ip: string;
  /** Its HELO/EHLO name. */
  readonly helo: string;
  /** The MAIL FROM address, `''` for the null sender. */
  readonly sender: string;
}

const RESULTS: readonly string[] = ['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy'];

function verdict(value: unknown): AuthResult {
  if (value === 'temperr') return 'temperror';
  return typeof value === 'string' && RESULTS.includes(value) ? (value as AuthResult) : 'none';
}

/** One application's verifier: its resolver (and the resolver's cache) shared by every message. */
export class Verifier {
  readonly #options: VerifierOptions;
  readonly #lookup: Lookup;

  constructor(options: VerifierOptions) {
    this.#options = options;
    this.#lookup = cachedResolver(options.dnsServers, Math.min(options.timeoutMs, 5000));
  }

  /** The authserv-id written and removed. */
  get authservId(): string {
    return this.#options.authservId;
  }

  /** Verifies one message (its bytes, or a stream of them as they arrive). Never rejects: a failure is a `temperror`. */
  async verify(message: Buffer | Readable, origin: MessageOrigin): Promise<MessageAuthentication> {
    const { authenticate } = await mailauth();
    const { authservId, timeoutMs } = this.#options;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const checked = authenticate(message, {
      ip: origin.ip,
      helo: origin.helo,
      sender: origin.sender,
      mta: authservId,
      resolver: this.#lookup,
      disableBimi: true,
      ...(this.#options.seal === undefined
        ? {}
        : {
            seal: { signingDomain: this.#options.seal.domain, selector: this.#options.seal.selector, privateKey: this.#options.seal.pem },
          }),
    }).catch((err: unknown) => err as Error);
    const outcome = await Promise.race([checked, late]).finally(() => clearTimeout(timer));
    if (outcome === undefined || outcome instanceof Error) {
      // Whatever the stream still sends is drained by mailauth's reader once it ends.
      const reason = outcome === undefined ? `not finished within ${timeoutMs} ms` : outcome.message;
      return unverified(authservId, origin, reason);
    }
    return typed(outcome, authservId);
  }
}

type Checked = Awaited<ReturnType<(typeof import('mailauth'))['authenticate']>>;

/** mailauth's result as {@link MessageAuthentication}. */
function typed(checked: Checked, authservId: string): MessageAuthentication {
  const { spf, dmarc, arc, dkim } = checked;
  const infos: string[] = [];
  const signatures = dkim.results.flatMap((r) => {
    infos.push(r.info);
    // An unsigned message has one result, `none`, for the field; the list names signatures only.
    if (r.signingDomain === undefined || r.signingDomain === '') return [];
    return {
      result: verdict(r.status.result),
      domain: r.signingDomain ?? '',
      selector: r.selector ?? '',
      // mailauth names it `algo` on the result (its typings say `algorithm`).
      algorithm: (r as { algo?: string }).algo ?? r.algorithm ?? '',
      aligned: typeof r.status.aligned === 'string' || r.status.aligned === true,
      reason: r.status.comment ?? '',
    };
  });
  if (spf !== false) infos.push(spf.info);
  if (arc !== false && arc.info !== undefined) infos.push(arc.info);
  if (dmarc !== false && dmarc.info !== '') infos.push(dmarc.info);
  const policy = dmarc === false ? undefined : dmarc.policy;
  const dmarcResult = dmarc === false ? 'none' : verdict(dmarc.status.result);
  return {
    spf: {
      result: spf === false ? 'none' : verdict(spf.status.result),
      domain: spf === false ? '' : spf.domain,
      reason: spf === false ? '' : (spf.status.comment ?? ''),
    },
    dkim: signatures,
    dmarc: {
      result: dmarcResult,
      domain: dmarc === false ? (dkim.headerFrom[0] ?? '').replace(/^.*@/, '') : dmarc.domain,
      policy: policy === 'none' || policy === 'quarantine' || policy === 'reject' ? policy : undefined,
      reason: dmarc === false ? '' : (dmarc.status.comment ?? dmarc.error ?? ''),
    },
    arc: {
      result: arc === false ? 'none' : verdict(arc.status.result),
      instance: arc === false || arc.i === false ? 0 : arc.i,
      reason: arc === false ? '' : (arc.status.comment ?? ''),
    },
    quarantine: dmarcResult === 'fail' && policy === 'quarantine',
    header: resultsField(authservId, infos),
    arcSet: arcFields(checked.headers),
  };
}

/** The results when the checks did not finish: `temperror` for what needs DNS. */
function unverified(authservId: string, origin: MessageOrigin, reason: string): MessageAuthentication {
  const domain = origin.sender.includes('@') ? origin.sender.slice(origin.sender.lastIndexOf('@') + 1) : origin.helo;
  return {
    spf: { result: 'temperror', domain, reason },
    dkim: [],
    dmarc: { result: 'temperror', domain: '', policy: undefined, reason },
    arc: { result: 'none', instance: 0, reason: '' },
    quarantine: false,
    arcSet: '',
    header: resultsField(authservId, [`spf=temperror (${reason.replace(/[()\\]/g, '')}) smtp.mailfrom=${origin.sender || origin.helo}`]),
  };
}

/** The ARC fields among mailauth's header lines (a sealed message's next set), CRLF-ended; `''` without them. */
function arcFields(headers: string): string {
  const fields = headers.split(/\r?\n(?![ \t])/).filter((field) => /^arc-/i.test(field));
  return fields.length === 0 ? '' : `${fields.map((f) => f.replace(/\r?\n/g, '\r\n')).join('\r\n')}\r\n`;
}

/** `Authentication-Results: id;` and each method's result, one per folded line; `none` without any (RFC 8601 §2.2). */
function resultsField(authservId: string, infos: readonly string[]): string {
  const lines = infos.map((info) => info.replace(/\r?\n/g, '\r\n').trim()).filter((info) => info !== '');
  return lines.length === 0
    ? `Authentication-Results: ${authservId}; none\r\n`
    : `Authentication-Results: ${authservId};\r\n ${lines.join(';\r\n ')}\r\n`;
}

/**
 * The message without the `Authentication-Results` fields that carry our authserv-id (RFC 8601
 * §5: a field from outside with our id is a forgery of our verdict); `body` itself when it has
 * none.
 */
export function withoutOwnResults(body: Buffer, authservId: string): Buffer {
  const end = body.indexOf('\r\n\r\n');
  const head = body.subarray(0, end === -1 ? body.length : end + 2).toString('latin1');
  if (!/^authentication-results\s*:/im.test(head)) return body;
  const fields = head.split(/\r\n(?![ \t])/);
  const own = authservId.toLowerCase();
  const kept = fields.filter((field) => {
    const match = /^authentication-results\s*:\s*(?:\([^)]*\)\s*)*([^\s;()]+)/i.exec(field);
    return match?.[1]?.toLowerCase() !== own;
  });
  if (kept.length === fields.length) return body;
  return Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), body.subarray(end === -1 ? body.length : end + 2)]);
}
