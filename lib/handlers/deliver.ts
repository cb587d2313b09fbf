import { join } from 'node:path';
import { IsArray, IsBoolean, IsInt, IsNotEmpty, IsObject, IsOptional, IsString, Matches, Max, Min } from '../app/validators.js';
import { RequestHandler, type AnyServedApplication } from '../app/request-handler.js';
import { serviceKey } from '../app/services.js';
import { MemoryLimitStore, type LimitStore } from '../app/limit-store.js';
import { settingsSchema } from '../app/settings-schema.js';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError } from '../protocol/reply.js';
import { OutboundQueue } from '../outbound/queue.js';
import { MtaSts } from '../outbound/mta-sts.js';
import { TlsReporter } from '../outbound/tls-reporter.js';
import { cachedResolver } from '../auth/resolver.js';
import { DEFAULT_LIFETIME, DEFAULT_RETRY_SCHEDULE } from '../outbound/schedule.js';
import { checkRelayRecipient, dkimSignerOf, listedRecipient, mayRelay, outsideClient, RelayAccessSettings } from './relay-access.js';
import { passableOverData } from './eight-bit.js';
import { checkedHops } from './hops.js';
import { receivedHeader } from './trace.js';

/**
 * Settings of {@link Deliver}. Times are in seconds unless they say otherwise.
 *
 * @example
 * ```ts
 * new Application(Deliver, { queueDir: '/var/spool/sirocco', retrySchedule: [60, 600, 3600], delayNoticeAfter: 4 * 3600 } satisfies DeliverSettings);
 * ```
 */
export class DeliverSettings extends RelayAccessSettings {
  /** The queue's folder, made if missing. Several processes (the workers of `start(n)`) may share it. */
  @IsString()
  @IsNotEmpty()
  queueDir!: string;

  /** The port exchangers are reached on. Default 25; tests point it at their own servers. */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  deliveryPort?: number;

  /** Waits after the 1st, 2nd, … failed attempt; the last one repeats. Default 300, 600, 1200, 2400, 3600. */
  @IsOptional()
  @IsArray()
  @IsInt({ each: true })
  @Min(1, { each: true })
  retrySchedule?: number[];

  /** How long a message is retried before it bounces (RFC 5321 §4.5.4.1). Default 5 days. */
  @IsOptional()
  @IsInt()
  @Min(1)
  queueLifetime?: number;

  /** After how long the sender is told, once, that a message is still waiting. Default: never. */
  @IsOptional()
  @IsInt()
  @Min(1)
  delayNoticeAfter?: number;

  /** Outbound connections open at once, in all. Default 20. */
  @IsOptional()
  @IsInt()
  @Min(1)
  deliveryConcurrency?: number;

  /** Outbound connections open at once to one destination domain. Default 4. */
  @IsOptional()
  @IsInt()
  @Min(1)
  deliveryConcurrencyPerDomain?: number;

  /** Messages per minute to one destination domain (0: no limit); past it the domain's messages wait. Default 0. */
  @IsOptional()
  @IsInt()
  @Min(0)
  deliveryRatePerDomain?: number;

  /**
   * Count `deliveryConcurrencyPerDomain` and `deliveryRatePerDomain` across every host that shares
   * the application's `limitStore` (a `RedisLimitStore`), so a fleet paces a destination as one
   * sender would. Without a shared store they count this process alone. Default false.
   */
  @IsOptional()
  @IsBoolean()
  deliverySharedPacing?: boolean;

  /**
   * Domains reached only over TLS with a verified certificate; without it their messages wait
   * (4.7.5). A message sent with REQUIRETLS always is, and bounces (5.7.30) without it.
   */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  requireTlsDomains?: string[];

  /** Extra TLS options for outbound connections and MTA-STS policy fetches (for example `ca` for a private CA). */
  @IsOptional()
  @IsObject()
  deliveryTLS?: Record<string, unknown>;

  /**
   * MTA-STS (RFC 8461): a destination that publishes a policy in `enforce` mode gets mail only
   * through the exchangers it names, over verified TLS (otherwise the message waits, 4.7.5); in
   * `testing` mode mail goes as before and the mismatch is logged. Policies are cached for their
   * `max_age`. Default true.
   */
  @IsOptional()
  @IsBoolean()
  mtaSts?: boolean;

  /** The HTTPS port policies are fetched from: 443, unless a test serves them elsewhere. */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  mtaStsPort?: number;

  /**
   * SMTP TLS reporting (RFC 8460): count each outbound session's TLS outcome per destination and,
   * after each `tlsReportPeriod`, send every destination that publishes a `_smtp._tls` record its
   * report (gzipped JSON, posted over verified HTTPS or mailed through this queue, signed with
   * `dkimKeys` when the sender's domain has some). Default false.
   */
  @IsOptional()
  @IsBoolean()
  tlsReporting?: boolean;

  /** The `organization-name` of TLS reports. Default: `hostname`. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  tlsReportOrganization?: string;

  /** The `contact-info` of TLS reports (an address or a URL). Default: `postmaster@<hostname>`. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  tlsReportContact?: string;

  /** The sender of mailed TLS reports; its domain is the report's submitter. Default: `noreply-tlsrpt@<hostname>`. */
  @IsOptional()
  @IsString()
  @Matches(/^[^@\s<>]+@[^@\s<>]+$/, { message: 'tlsReportFrom must be an address' })
  tlsReportFrom?: string;

  /**
   * Whether the HTTPS requests a destination's DNS asks for (its MTA-STS policy, its TLS report
   * collector) may go to loopback, private and link-local addresses (a test's servers, a private
   * network's). Default false: a destination's records could otherwise aim this host's requests
   * at services of its own network.
   */
  @IsOptional()
  @IsBoolean()
  httpsToPrivateAddresses?: boolean;

  /** Seconds a TLS report covers, aligned to the epoch (a day: UTC days, as RFC 8460 asks). Default 86 400. */
  @IsOptional()
  @IsInt()
  @Min(60)
  tlsReportPeriod?: number;

  /** Milliseconds to connect to an exchanger and to get its greeting. Default 30 000. */
  @IsOptional()
  @IsInt()
  @Min(100)
  deliveryConnectTimeout?: number;

  /** Milliseconds between looks at the queue folder for due messages. Default 5000. */
  @IsOptional()
  @IsInt()
  @Min(10)
  queueScanInterval?: number;

  /**
   * A message with more `Received` fields than this is in a mail loop and is refused
   * `554 5.4.6` (RFC 5321 §6.3). Default 50, as Postfix's `hopcount_limit`.
   */
  @IsOptional()
  @IsInt()
  @Min(1)
  maxHops?: number;

  /** Whether a `Received` field is added (RFC 5321 §4.4). Default true. */
  @IsOptional()
  @IsBoolean()
  deliverTraceHeaders?: boolean;
}

const QUEUE = serviceKey<OutboundQueue>('outbound queue');

/**
 * The outbound queue of an application whose handler is {@link Deliver} (or a subclass): to queue
 * a message of your own, or to look at it. Made with the first call.
 *
 * @example
 * ```ts
 * const id = await deliveryQueue(app).enqueue({ from: 'me@example.com', recipients: [{ address: 'you@example.org' }] }, message);
 * ```
 */
export function deliveryQueue(application: AnyServedApplication): OutboundQueue {
  const settings = application.settings as DeliverSettings & { hostname: string; dnsServers?: string[] | undefined };
  return application.services.get(QUEUE, () => {
    // MTA-STS records and TLS report records: one cache of answers for both.
    const lookup = cachedResolver(settings.dnsServers, 5000);
    const queue: OutboundQueue = new OutboundQueue({
      dir: settings.queueDir,
      hostname: settings.hostname,
      policy: {
        schedule: settings.retrySchedule ?? DEFAULT_RETRY_SCHEDULE,
        lifetime: settings.queueLifetime ?? DEFAULT_LIFETIME,
        delayNoticeAfter: settings.delayNoticeAfter,
      },
      resolver: { servers: settings.dnsServers },
      connect: { port: settings.deliveryPort, tls: settings.deliveryTLS, connectTimeout: settings.deliveryConnectTimeout },
      requireTlsDomains: settings.requireTlsDomains,
      concurrency: settings.deliveryConcurrency,
      perDestination: settings.deliveryConcurrencyPerDomain,
      ...pacing(settings),
      scanInterval: settings.queueScanInterval,
      dkim: dkimSignerOf(application, settings.dkimKeys),
      mtaSts:
        settings.mtaSts === false
          ? undefined
          : new MtaSts({
              lookup,
              port: settings.mtaStsPort,
              privateAddresses: settings.httpsToPrivateAddresses,
              tls: settings.deliveryTLS,
              timeoutMs: settings.deliveryConnectTimeout,
              logger: application.logger.child({ component: 'mta-sts' }),
            }),
      tlsReporter:
        settings.tlsReporting === true
          ? new TlsReporter({
              organization: settings.tlsReportOrganization ?? settings.hostname,
              contact: settings.tlsReportContact ?? `postmaster@${settings.hostname}`,
              from: settings.tlsReportFrom ?? `noreply-tlsrpt@${settings.hostname}`,
              hostname: settings.hostname,
              periodMs: (settings.tlsReportPeriod ?? 86_400) * 1000,
              dir: join(settings.queueDir, 'tls-reports'),
              lookup,
              tls: settings.deliveryTLS,
              privateAddresses: settings.httpsToPrivateAddresses,
              mail: (from, to, content) => queue.enqueue({ from, recipients: [{ address: to }], tlsReport: true }, content),
              logger: application.logger.child({ component: 'tls-reports' }),
            })
          : undefined,
      logger: application.logger.child({ component: 'outbound' }),
    });
    return queue;
  });
}

/** The queue's pacing options: counted in the shared store when the fleet shares it, else in this process. */
function pacing(settings: DeliverSettings): {
  sharedCounts?: LimitStore | undefined;
  ratePerDestination?: { perMinute: number; counts: LimitStore };
} {
  const store = settings.deliverySharedPacing === true ? (settings as { limitStore?: LimitStore }).limitStore : undefined;
  const perMinute = settings.deliveryRatePerDomain ?? 0;
  return {
    sharedCounts: store,
    ...(perMinute === 0 ? {} : { ratePerDestination: { perMinute, counts: store ?? new MemoryLimitStore() } }),
  };
}

/**
 * A small MTA: takes each message into a durable queue on disk (written, flushed, renamed, its
 * folder flushed, all before the 250, so a crash after it loses nothing) and delivers it to each
 * recipient domain's mail exchangers, found in DNS. Temporary failures are retried on a schedule
 * for up to five days; permanent ones, and messages that outlive the schedule, come back to the
 * sender as a delivery status notification (RFC 3464). Several processes may share the queue:
 * each message is claimed by one at a time.
 *
 * Never an open relay: a client that is neither authenticated nor in `trustedNetworks` (loopback
 * by default) may send only to `relayDomains`, and is refused `554 5.7.1` for any other
 * recipient. Override {@link mayRelay} to decide otherwise.
 *
 * @example
 * ```ts
 * await new Application(Deliver, { hostname: 'mta.example.com', queueDir: '/var/spool/sirocco' }).listen(587);
 * ```
 */
@settingsSchema(DeliverSettings)
export class Deliver extends RequestHandler<DeliverSettings> {
  static override streaming = true;

  /**
   * Starts the queue's delivery beside the server (in each worker under `start(n)`); the
   * application's services close it with its last server.
   */
  static override startService(application: AnyServedApplication): undefined {
    deliveryQueue(application).start();
    return undefined;
  }

  /**
   * Whether this client may send to `address`: by default an authenticated client, one in
   * `trustedNetworks`, or a recipient in `relayDomains`. Override it to decide otherwise.
   */
  mayRelay(address: string): boolean | Promise<boolean> {
    const { user, remoteAddress } = this.request.session;
    return mayRelay({ application: this.application, user, remoteAddress }, address);
  }

  override async rcpt(address: string): Promise<void> {
    if (/@\[.*\]$/.test(address)) throw SMTPError.from(REPLIES.addressLiteralRefused());
    await checkRelayRecipient(this, address);
  }

  /**
   * Whether an outside client's recipient exists, checked at RCPT: by default, whether
   * `relayRecipients` lists it (every recipient when it is not set). Override it to ask your
   * user store, or the next hop.
   */
  verifyRecipient(address: string): boolean | Promise<boolean> {
    return listedRecipient(this.settings, address);
  }

  override async data(): Promise<void> {
    const { envelope } = this.request;
    const queue = deliveryQueue(this.application);
    const trace =
      this.settings.deliverTraceHeaders === false ? undefined : Buffer.from(receivedHeader(this.request, this.settings.hostname));
    let id: string;
    try {
      id = await queue.enqueue(
        {
          from: envelope.mailFrom,
          recipients: envelope.rcptTos.map((address, i) => ({ address, dsn: envelope.rcptDsn[i] })),
          ret: envelope.dsn?.ret,
          envid: envelope.dsn?.envid,
          requireTls: envelope.requireTls,
          eightBit: envelope.bodyType !== '7BIT',
          unverifiedSender: outsideClient(this),
          // With mailAuth, the verdict goes on top (and a refusal by dmarcEnforce stops the queueing).
          head: this.settings.mailAuth ? async () => (await this.request.authenticated())?.header ?? '' : undefined,
        },
        withPrefix(
          trace,
          checkedHops(
            passableOverData(this.request.stream, envelope.bodyType === 'BINARYMIME'),
            this.settings.maxHops ?? 50,
            this.settings.hostname,
          ),
        ),
      );
    } catch (err) {
      if (err instanceof SMTPError) throw err;
      throw SMTPError.from(REPLIES.localError(), {
        logMessage: `queueing in ${this.settings.queueDir} failed: ${err instanceof Error ? err.message : String(err)}`,
        cause: err,
      });
    }
    this.log.info({ outboundId: id, recipients: envelope.rcptTos.length }, 'queued for delivery');
    this.finish(`Ok: queued as ${id}`);
  }
}

async function* withPrefix(prefix: Buffer | undefined, rest: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  if (prefix !== undefined) yield prefix;
  yield* rest;
}
