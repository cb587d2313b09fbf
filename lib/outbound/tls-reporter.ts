/**
 * SMTP TLS reporting (RFC 8460) at work: counts the outbound queue's TLS sessions, and after each
 * period (a UTC day by default) sends every policy domain that asks for reports (its
 * `_smtp._tls` record) its report: gzipped JSON posted over verified HTTPS, or mailed through the
 * queue (signed with the sender domain's DKIM keys when it has some). Counts not yet reported
 * when the queue closes are kept in a file and taken up by the next process that starts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { boundedHttps } from './https.js';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Logger } from 'pino';
import { reportAddresses, reportMail, tlsReport, TlsTally, type PolicyTally, type TlsSession } from './tls-report.js';

const gzipped = promisify(gzip);

/** How reports are made and sent. */
export interface TlsReporterOptions {
  /** `organization-name` of the reports. */
  readonly organization: string;
  /** `contact-info` of the reports: an address or a URL. */
  readonly contact: string;
  /** The sender of mailed reports; its domain is the submitter. */
  readonly from: string;
  /** This host's name (in Message-ID). */
  readonly hostname: string;
  /** The length of a reporting period, ms (a day by default). */
  readonly periodMs: number;
  /** The folder counts are kept in across a restart. */
  readonly dir: string;
  /** The DNS lookup (TXT and addresses). */
  readonly lookup: (name: string, type: string) => Promise<never[]>;
  /** Extra TLS options for HTTPS reports (`ca` for a private CA); the certificate is always verified. */
  readonly tls?: Readonly<Record<string, unknown>> | undefined;
  /** The longest an HTTPS report may take, ms. Default 30 000. */
  readonly timeoutMs?: number | undefined;
  /**
   * Whether an `https:` report may go to a loopback, private or link-local address. Default
   * false: a domain's record could otherwise make this host post to its own network's services.
   */
  readonly privateAddresses?: boolean | undefined;
  /** Queues a mailed report; resolves to its queue id. */
  readonly mail: (from: string, to: string, content: Buffer) => Promise<string>;
  readonly logger: Logger;
}

/**
 * One report handed on: to whom, and whether it was taken (a mailed one is taken once queued).
 *
 * @example
 * ```ts
 * for (const r of await deliveryQueue(app).sendTlsReports()) console.log(r.domain, r.to, r.ok ? 'sent' : r.error);
 * ```
 */
export interface SentTlsReport {
  /** The policy domain reported on. */
  readonly domain: string;
  /** A `mailto:` address or an `https:` URL from the domain's record. */
  readonly to: string;
  /** The report's `report-id` (one report per domain and period, whatever the number of addresses). */
  readonly reportId: string;
  /** Whether it was taken: a 2xx answer, or queued for a `mailto:` address. */
  readonly ok: boolean;
  /** Why it was not taken. */
  readonly error?: string | undefined;
}

/** Domains reported at once. */
const PARALLEL = 8;

/** An HTTPS report's body is at most this large (RFC 8460 leaves it to the sender; a day of one domain is far less). */
const MAX_ANSWER = 64 * 1024;

export class TlsReporter {
  readonly #options: TlsReporterOptions;
  readonly #tally: TlsTally;
  #timer: NodeJS.Timeout | undefined;
  #adopting = Promise.resolve();

  constructor(options: TlsReporterOptions) {
    this.#options = options;
    this.#tally = new TlsTally(options.periodMs);
  }

  /** Counts one session. */
  record(session: TlsSession): void {
    this.#tally.record(session);
  }

  /** Takes up counts kept by processes that stopped, and sends each period's reports once it ends. */
  start(): void {
    if (this.#timer !== undefined) return;
    void this.#adopt();
    this.#schedule();
  }

  #schedule(): void {
    const now = Date.now();
    const next = this.#tally.periodOf(now) + this.#options.periodMs;
    // A little after the period ends, spread so that a fleet's hosts do not all post at once.
    const jitter = Math.floor(Math.random() * Math.min(300_000, this.#options.periodMs / 10));
    this.#timer = setTimeout(
      () => {
        void this.send(false).catch((err: unknown) => this.#options.logger.error({ err }, 'TLS reports could not be sent'));
        this.#schedule();
      },
      next - now + jitter,
    );
    this.#timer.unref();
  }

  /**
   * Sends the reports of every period that has ended (and of the current one too when
   * `includeCurrent`, its range ending now); resolves to what was handed on.
   */
  async send(includeCurrent = true): Promise<SentTlsReport[]> {
    await this.#adopt();
    const now = Date.now();
    const sent: SentTlsReport[] = [];
    for (const [start, period] of this.#tally.take(includeCurrent ? Infinity : this.#tally.periodOf(now))) {
      const range = { start, end: Math.min(start + this.#options.periodMs, now) };
      // Several domains at once (a lookup and a POST each may take seconds), a few at a time.
      const domains = [...period];
      const next = async (): Promise<void> => {
        for (let item = domains.shift(); item !== undefined; item = domains.shift())
          sent.push(...(await this.#report(item[0], item[1].values(), range)));
      };
      await Promise.all(Array.from({ length: PARALLEL }, next));
    }
    for (const r of sent) {
      if (r.ok) this.#options.logger.info(r, 'TLS report sent');
      else this.#options.logger.warn(r, 'TLS report not taken');
    }
    return sent;
  }

  /** One domain's report, to each address its record names (none: it asks for none). */
  async #report(domain: string, policies: Iterable<PolicyTally>, range: { start: number; end: number }): Promise<SentTlsReport[]> {
    const to = await this.#addresses(domain);
    if (to === undefined) return [];
    const submitter = this.#options.from.slice(this.#options.from.lastIndexOf('@') + 1);
    const report = tlsReport({ ...this.#options, submitter }, domain, policies, range);
    const reportId = report['report-id'] as string;
    const body = await gzipped(JSON.stringify(report));
    const sent: SentTlsReport[] = [];
    for (const url of to.https) sent.push(await this.#post(domain, url, reportId, body));
    for (const address of to.mailto) {
      const content = reportMail({ ...this.#options, to: address, submitter, domain, reportId, range, gzipped: body });
      sent.push(
        await this.#options.mail(this.#options.from, address, content).then(
          () => ({ domain, to: `mailto:${address}`, reportId, ok: true }),
          (err: unknown) => ({ domain, to: `mailto:${address}`, reportId, ok: false, error: (err as Error).message }),
        ),
      );
    }
    return sent;
  }

  /** Stops the timer and keeps what is not yet reported in a file, for the next start. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#tally.empty) return;
    const json = JSON.stringify(this.#tally.toJSON());
    this.#tally.take(Infinity);
    await mkdir(this.#options.dir, { recursive: true });
    await writeFile(join(this.#options.dir, `${Date.now()}-${process.pid}-${randomBytes(4).toString('hex')}.json`), json);
  }

  /** Takes up the files kept by closed processes, one look at a time (a send waits for the look at start). */
  #adopt(): Promise<void> {
    this.#adopting = this.#adopting
      .then(() => this.#adoptNow())
      .catch((err: unknown) => this.#options.logger.error({ err }, 'kept TLS report counts could not be taken up'));
    return this.#adopting;
  }

  /** Each file is renamed first, so only one process takes it. */
  async #adoptNow(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#options.dir);
    } catch {
      return;
    }
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const taken = join(this.#options.dir, `${name}.taken-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await rename(join(this.#options.dir, name), taken);
      } catch {
        continue; // another process took it
      }
      try {
        this.#tally.merge(JSON.parse(await readFile(taken, 'utf8')));
      } catch (err) {
        this.#options.logger.error({ file: name, err: (err as Error).message }, 'kept TLS report counts could not be read; left out');
      }
      await unlink(taken).catch(() => undefined);
    }
  }

  /** Where `domain` wants its reports, from `_smtp._tls.<domain>`; `undefined`: it wants none. */
  async #addresses(domain: string): Promise<ReturnType<typeof reportAddresses>> {
    try {
      const records = (await this.#options.lookup(`_smtp._tls.${domain}`, 'TXT')) as unknown as string[][];
      return reportAddresses(records.map((chunks) => chunks.join('')));
    } catch {
      return undefined;
    }
  }

  /** POSTs a report (RFC 8460 §5.4): verified TLS, 2xx only, no redirect, bounded in time. */
  async #post(domain: string, url: string, reportId: string, body: Buffer): Promise<SentTlsReport> {
    const target = new URL(url);
    try {
      await boundedHttps({
        host: target.hostname,
        port: target.port === '' ? 443 : Number(target.port),
        path: `${target.pathname}${target.search}`,
        body: { type: 'application/tlsrpt+gzip', bytes: body },
        maxBytes: MAX_ANSWER,
        timeoutMs: this.#options.timeoutMs ?? 30_000,
        tls: this.#options.tls,
        lookup: this.#options.lookup,
        privateAddresses: this.#options.privateAddresses,
      });
      return { domain, to: url, reportId, ok: true };
    } catch (err) {
      return { domain, to: url, reportId, ok: false, error: (err as Error).message };
    }
  }
}
