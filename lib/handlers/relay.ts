import { IsBoolean, IsInt, IsNotEmpty, IsOptional, IsString, Max, Min } from '../app/validators.js';
import type { Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { RequestHandler, type ServedApplication } from '../app/request-handler.js';
import { serviceKey } from '../app/services.js';
import { settingsSchema } from '../app/settings-schema.js';
import { pipeline, Readable, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError, type EnhancedCode } from '../protocol/reply.js';
import { bounceMessage, type Refusal } from '../outbound/bounce.js';
import { dsnGroups, dsnOptions } from '../outbound/client.js';
import { deliveryEnded, deliverySpan, smarthostOutcomes } from '../outbound/tracing.js';
import { passableOverData } from './eight-bit.js';
import { checkedHops } from './hops.js';
import { receivedHeader } from './trace.js';
import type { DkimSigner } from '../auth/sign.js';
import { checkRelayRecipient, dkimSignerOf, listedRecipient, mayRelay, outsideClient, RelayAccessSettings } from './relay-access.js';

/**
 * Settings of {@link Relay}.
 *
 * @example
 * ```ts
 * new Application(Relay, { relayHost: 'smtp.example.com', relayPort: 587, relayRequireTLS: true } satisfies RelaySettings);
 * ```
 */
export class RelaySettings extends RelayAccessSettings {
  /** The smarthost's name or address. */
  @IsString()
  @IsNotEmpty()
  relayHost!: string;

  /** The smarthost's port. Default 25. */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  relayPort?: number;

  /** TLS from the first byte (port 465). Default false: STARTTLS when offered. */
  @IsOptional()
  @IsBoolean()
  relaySecure?: boolean;

  /** Refuse to send unless STARTTLS succeeds. Default false. */
  @IsOptional()
  @IsBoolean()
  relayRequireTLS?: boolean;

  /** User name for AUTH at the smarthost. */
  @IsOptional()
  @IsString()
  relayUser?: string;

  /** Password for AUTH at the smarthost. */
  @IsOptional()
  @IsString()
  relayPassword?: string;

  /** Extra TLS options for the smarthost connection (for example `ca`, `servername`). */
  @IsOptional()
  relayTLS?: Record<string, unknown>;

  /**
   * Send the sender a bounce for recipients the smarthost refused while it took the others.
   * Default true; off, they are only logged.
   */
  @IsOptional()
  @IsBoolean()
  relayBounces?: boolean;

  /**
   * A message with more `Received` fields than this is in a mail loop and is refused
   * `554 5.4.6` (RFC 5321 §6.3) before it reaches the smarthost. Default 50.
   */
  @IsOptional()
  @IsInt()
  @Min(1)
  maxHops?: number;

  /** Whether to add a `Received` field (RFC 5321 §4.4 says a relay must). Default true. */
  @IsOptional()
  @IsBoolean()
  relayTraceHeaders?: boolean;
}

/**
 * The application's pooled connections to the smarthost. nodemailer is loaded with the first
 * message relayed, so a server that never relays does not carry it (about 12 MiB); the pool
 * closes with the application's last server.
 */
class SmarthostPool {
  readonly #settings: RelaySettings & { readonly hostname: string };
  #transport: Promise<Transporter<SMTPTransport.SentMessageInfo>> | undefined;
  #closed = false;

  constructor(settings: RelaySettings & { readonly hostname: string }) {
    this.#settings = settings;
  }

  /** The transport, made on first use (one per application, however many messages ask at once). */
  transport(): Promise<Transporter<SMTPTransport.SentMessageInfo>> {
    if (this.#closed) return Promise.reject(new Error('Relay: the application stopped serving; its smarthost pool is closed'));
    this.#transport ??= this.#make();
    return this.#transport;
  }

  async #make(): Promise<Transporter<SMTPTransport.SentMessageInfo>> {
    const { default: nodemailer } = await import('nodemailer');
    const settings = this.#settings;
    const auth = settings.relayUser === undefined ? undefined : { user: settings.relayUser, pass: settings.relayPassword ?? '' };
    return nodemailer.createTransport({
      host: settings.relayHost,
      port: settings.relayPort ?? 25,
      secure: settings.relaySecure ?? false,
      requireTLS: settings.relayRequireTLS ?? false,
      ...(auth === undefined ? {} : { auth }),
      ...(settings.relayTLS === undefined ? {} : { tls: settings.relayTLS }),
      pool: true,
      // EHLO with this server's own name (nodemailer would say [127.0.0.1] or the OS host name).
      name: settings.hostname,
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const made = this.#transport;
    this.#transport = undefined;
    if (made !== undefined) (await made.catch(() => undefined))?.close();
  }
}

const SMARTHOST = serviceKey<SmarthostPool>('smarthost pool');

/** The application's smarthost transport. */
function transportFor(application: ServedApplication<RelaySettings>): Promise<Transporter<SMTPTransport.SentMessageInfo>> {
  return application.services.get(SMARTHOST, () => new SmarthostPool(application.settings)).transport();
}

/** RFC 8689 §5: a REQUIRETLS message that cannot go on over verified TLS. */
function requireTlsRefusal(why: string, cause?: unknown): SMTPError {
  return new SMTPError(550, [5, 7, 30], 'REQUIRETLS support required', { logMessage: `REQUIRETLS message not relayed: ${why}`, cause });
}

/** The header section of a message, at most 32 KiB: what a bounce returns by default. */
const MAX_HEAD = 32 * 1024;

/** What a relayed message's checks and keeping found while it streamed. */
interface RelayState {
  /** Whether the whole message is kept (RET=FULL, or a second transaction needs it). */
  keptAll: boolean;
  /** A check's refusal, for the client instead of nodemailer's rewriting of it. */
  refusal: SMTPError | undefined;
}

/** The smarthost's reply as ours: its code, its enhanced code when it sent one, its text. */
function smarthostError(err: unknown): SMTPError {
  const e = err as { responseCode?: number; response?: string; message?: string; code?: string };
  if (e.code === 'EREQUIRETLS') return requireTlsRefusal(e.message ?? 'the relay host does not offer it', err);
  const code = e.responseCode;
  if (code !== undefined && code >= 400 && code < 600) {
    const text = (e.response ?? '').replace(/^\d{3}[ -]/, '');
    const enhanced = /^([245])\.(\d{1,3})\.(\d{1,3}) /.exec(text);
    const klass = Math.floor(code / 100) as 4 | 5;
    const parsed: EnhancedCode | undefined =
      enhanced !== null && Number(enhanced[1]) === klass ? [klass, Number(enhanced[2]), Number(enhanced[3])] : undefined;
    return new SMTPError(code, parsed ?? [klass, 0, 0], parsed === undefined ? text : text.slice(enhanced?.[0].length ?? 0), {
      logMessage: `smarthost refused: ${e.response ?? ''}`,
      cause: err,
    });
  }
  // No reply from the smarthost at all: try again later.
  return new SMTPError(451, [4, 4, 1], 'Relay host unreachable, try again later', {
    logMessage: `smarthost failed: ${e.code ?? ''} ${e.message ?? ''}`,
    cause: err,
  });
}

/**
 * Forwards each message to a smarthost with nodemailer's SMTP transport, reusing its connections.
 * The client's reply reflects the smarthost's: a permanent refusal stays 5xx, a temporary one 4xx,
 * an unreachable smarthost is `451 4.4.1`. When the smarthost refuses only some recipients, the
 * message went to the others and the 250 stands; the refused recipients are logged and the sender
 * gets a delivery status notification (RFC 3464) naming each with the smarthost's reply, sent
 * through the smarthost from the null sender `<>` (unless `relayBounces` is off). A message from
 * `<>` (itself a bounce) never gets one, so two mail systems cannot bounce at each other for ever.
 *
 * @example
 * ```ts
 * await new Application(Relay, { relayHost: 'smtp.example.com', relayPort: 587, relayRequireTLS: true,
 *   relayUser: 'me', relayPassword: process.env.SMTP_PASSWORD }).listen(2525);
 * ```
 */
@settingsSchema(RelaySettings)
export class Relay extends RequestHandler<RelaySettings> {
  /** The message goes on to the smarthost while it arrives. */
  static override streaming = true;

  /**
   * Whether this client may send to `address` through the smarthost. By default: an
   * authenticated client, one in `trustedNetworks` (loopback), or a recipient in `relayDomains`;
   * the others are refused `554 5.7.1`. Override it to decide otherwise.
   */
  mayRelay(address: string): boolean | Promise<boolean> {
    const { user, remoteAddress } = this.request.session;
    return mayRelay({ application: this.application, user, remoteAddress }, address);
  }

  override async rcpt(address: string): Promise<void> {
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
    if (envelope.requireTls && (this.settings.relayTLS as { rejectUnauthorized?: unknown } | undefined)?.rejectUnauthorized === false) {
      throw requireTlsRefusal('relayTLS turns certificate verification off');
    }
    const groups = dsnGroups(envelope.rcptTos.map((address, i) => ({ address, dsn: envelope.rcptDsn[i] })));
    // Kept while it streams: the header section for a bounce; the whole message for RET=FULL, a
    // second transaction, a signature, or a mail authentication verdict on top. It counts against
    // bodyMemoryBudget: past it a second transaction cannot be made (452 4.3.1), and RET=FULL gets the header section.
    const signer = dkimSignerOf(this.application, this.settings.dkimKeys);
    const holding = signer !== undefined || this.settings.mailAuth === true;
    const state: RelayState = { keptAll: envelope.dsn?.ret === 'FULL' || groups.length > 1 || holding, refusal: undefined };
    const budget = this.application.bodyBudget;
    let counted = 0;
    const kept: Buffer[] = [];
    let keptBytes = 0;
    // The message's own error (too big, client gone) reaches nodemailer, which then drops the
    // smarthost connection instead of ending the data: a cut message is never delivered. So does
    // a refusal of the checks on the way (a mail loop, binary content DATA would change, the
    // budget spent).
    const log = this.log;
    const source = new Transform({
      transform(part: Buffer, _encoding, done): void {
        if (state.keptAll && !budget.take(part.length)) {
          state.keptAll = false;
          budget.refused();
          log.warn({ reply: 'insufficientStorage', held: budget.held, budget: budget.limit }, 'body memory budget spent');
          if (groups.length > 1 || holding) {
            state.refusal = SMTPError.from(REPLIES.insufficientStorage());
            done(new Error(state.refusal.message));
            return;
          }
        }
        if (state.keptAll) {
          // A copy: a view would keep a whole read buffer alive for a few bytes, uncounted.
          kept.push(Buffer.from(part));
          counted += part.length;
          keptBytes += part.length;
        } else if (keptBytes < MAX_HEAD) {
          kept.push(part);
          keptBytes += part.length;
        }
        done(null, part);
      },
    });
    try {
      await this.#relay(groups, source, kept, state, holding ? { signer } : undefined);
    } finally {
      budget.release(counted);
    }
  }

  async #relay(
    groups: ReturnType<typeof dsnGroups>,
    source: Transform,
    kept: Buffer[],
    state: RelayState,
    holding: { readonly signer: DkimSigner | undefined } | undefined,
  ): Promise<void> {
    const { mailFrom, envelope } = this.request;
    const max = this.settings.maxHops ?? 50;
    const binary = envelope.bodyType === 'BINARYMIME';
    const hostname = this.settings.hostname;
    // RFC 5321 §4.4: a relay adds its Received field; it is what lets the next hop see a loop.
    const trace = this.settings.relayTraceHeaders === false ? undefined : Buffer.from(receivedHeader(this.request, hostname));
    const checked = async function* (stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
      try {
        if (trace !== undefined) yield trace;
        yield* checkedHops(passableOverData(stream, binary), max, hostname);
      } catch (err) {
        if (!(err instanceof SMTPError)) throw err;
        // nodemailer rewrites the error it is given (its code becomes ESTREAM): it gets a copy.
        state.refusal = err;
        throw new Error(err.message, { cause: err });
      }
    };
    pipeline(Readable.from(checked(this.request.stream)), source, () => undefined);
    const rejected: Refusal[] = [];
    let whole: Buffer | undefined;
    if (holding !== undefined) {
      // The verdict on top, sealed and signed over the bytes that go out: the whole message first (held, counted).
      await finished(source.resume()).catch((err: unknown) => {
        throw state.refusal ?? err;
      });
      const verdict = await this.request.authenticated();
      const message = Buffer.concat([Buffer.from(`${verdict?.arcSet ?? ''}${verdict?.header ?? ''}`), ...kept]);
      whole = holding.signer === undefined ? message : await holding.signer.sign(message);
    }
    for (const [n, group] of groups.entries()) {
      const raw = n === 0 && whole === undefined ? source : (whole ??= Buffer.concat(kept));
      let info: SMTPTransport.SentMessageInfo;
      const span = deliverySpan(
        { exchanger: this.settings.relayHost, port: this.settings.relayPort ?? 25 },
        group.addresses.length,
        this.request.id,
      );
      try {
        info = await (
          await transportFor(this.application)
        ).sendMail({
          // BODY=8BITMIME as it came in (and for a BINARYMIME message found to be 8-bit text).
          envelope: { from: mailFrom, to: group.addresses, ...(envelope.bodyType === '7BIT' ? {} : { use8BitMime: true }) },
          raw,
          ...(envelope.requireTls ? { requireTLSExtensionEnabled: true } : {}),
          ...dsnOptions(envelope.dsn, group.dsn),
        });
      } catch (err) {
        const refusal = (n === 0 ? state.refusal : undefined) ?? smarthostError(err);
        deliveryEnded(span, smarthostOutcomes(group.addresses, { failed: refusal }));
        if (n === 0) throw refusal;
        // The first group went: the 250 stands, and these recipients are bounced.
        for (const recipient of group.addresses)
          rejected.push({ recipient, code: refusal.code, reply: refusal.message, originalRecipient: group.dsn?.orcpt });
        continue;
      }
      deliveryEnded(span, smarthostOutcomes(group.addresses, info));
      // nodemailer resolves only once the smarthost accepted the message for at least one recipient.
      for (const recipient of info.rejected) {
        const err = info.rejectedErrors?.find((e) => e.recipient === recipient);
        const code = err?.responseCode ?? 550;
        rejected.push({
          recipient,
          code,
          reply: err?.response ?? `${code} refused by the relay host`,
          originalRecipient: group.dsn?.orcpt,
        });
      }
    }
    if (rejected.length > 0) await this.#bounce(rejected, whole ?? Buffer.concat(kept), state.keptAll);
    this.finish(`Ok: relayed as ${this.request.id}`);
  }

  /**
   * Tells the sender which recipients the smarthost refused (the client was told 250 for them),
   * except those whose NOTIFY asks for no failure notice (RFC 3461 §4.1).
   */
  async #bounce(refused: readonly Refusal[], original: Buffer, whole: boolean): Promise<void> {
    const { mailFrom, id, receivedAt, envelope } = this.request;
    this.log.warn({ rejected: refused.map((r) => r.recipient) }, 'smarthost refused some recipients');
    if (mailFrom === '') {
      this.log.warn('no bounce for a message from the null sender');
      return;
    }
    if (this.settings.relayBounces === false) return;
    if (outsideClient(this)) {
      this.log.warn({ to: mailFrom }, 'no bounce: the sender of an outside client was never verified');
      return;
    }
    const refusals = refused.filter((r) => {
      const notify = envelope.rcptDsn[envelope.rcptTos.indexOf(r.recipient)]?.notify;
      return notify === undefined || (notify !== 'NEVER' && notify.includes('FAILURE'));
    });
    if (refusals.length === 0) {
      this.log.info('no bounce: the refused recipients asked for no failure notice');
      return;
    }
    // Whatever goes wrong here, the others got the message: the 250 must stand.
    try {
      const message = bounceMessage({
        reportingMta: this.settings.hostname,
        remoteMta: this.settings.relayHost,
        sender: mailFrom,
        refusals,
        arrival: receivedAt,
        original,
        // RET=FULL, unless the budget would not hold the whole message: then its header section.
        returnFull: envelope.dsn?.ret === 'FULL' && whole,
        envid: envelope.dsn?.envid,
        id,
      });
      await (await transportFor(this.application)).sendMail({ envelope: { from: '', to: [mailFrom] }, raw: message });
      this.log.info({ to: mailFrom, recipients: refusals.length }, 'bounce sent');
    } catch (err) {
      this.log.error({ err, to: mailFrom }, 'bounce could not be sent');
    }
  }
}
