import { IsBoolean, IsInt, IsNotEmpty, IsOptional, IsString, Max, Min } from '../app/validators.js';
import type { Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { RequestHandler } from '../app/request-handler.js';
import { settingsSchema } from '../app/settings.js';
import { SMTPError, type EnhancedCode } from '../protocol/reply.js';
import { bounceMessage, type Refusal } from './bounce.js';

/**
 * Settings of {@link Relay}.
 *
 * @example
 * ```ts
 * new Application(Relay, { relayHost: 'smtp.example.com', relayPort: 587, relayRequireTLS: true } satisfies RelaySettings);
 * ```
 */
export class RelaySettings {
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
}

const transports = new WeakMap<object, Transporter<SMTPTransport.SentMessageInfo>>();

/**
 * The application's pooled transport. nodemailer is loaded with the first message relayed, so a
 * server that never relays does not carry it (about 12 MiB).
 */
async function transportFor(settings: RelaySettings): Promise<Transporter<SMTPTransport.SentMessageInfo>> {
  let transport = transports.get(settings);
  if (transport === undefined) {
    const { default: nodemailer } = await import('nodemailer');
    // Another message may have made it while nodemailer loaded: one pool per application.
    const made = transports.get(settings);
    if (made !== undefined) return made;
    const auth = settings.relayUser === undefined ? undefined : { user: settings.relayUser, pass: settings.relayPassword ?? '' };
    transport = nodemailer.createTransport({
      host: settings.relayHost,
      port: settings.relayPort ?? 25,
      secure: settings.relaySecure ?? false,
      requireTLS: settings.relayRequireTLS ?? false,
      ...(auth === undefined ? {} : { auth }),
      ...(settings.relayTLS === undefined ? {} : { tls: settings.relayTLS }),
      pool: true,
    });
    transports.set(settings, transport);
  }
  return transport;
}

/** The smarthost's reply as ours: its code, its enhanced code when it sent one, its text. */
function smarthostError(err: unknown): SMTPError {
  const e = err as { responseCode?: number; response?: string; message?: string; code?: string };
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
  override async data(): Promise<void> {
    const { mailFrom, rcptTos, body } = this.request;
    let info: SMTPTransport.SentMessageInfo;
    try {
      info = await (await transportFor(this.settings)).sendMail({ envelope: { from: mailFrom, to: [...rcptTos] }, raw: body });
    } catch (err) {
      throw smarthostError(err);
    }
    // nodemailer resolves only once the smarthost accepted the message for at least one recipient.
    if (info.rejected.length > 0) await this.#bounce(info);
    this.finish(`Ok: relayed as ${this.request.id}`);
  }

  /** Tells the sender which recipients the smarthost refused: the client was told 250 for them. */
  async #bounce(info: SMTPTransport.SentMessageInfo): Promise<void> {
    const { mailFrom, id, receivedAt, body } = this.request;
    this.log.warn({ rejected: info.rejected }, 'smarthost refused some recipients');
    if (mailFrom === '') {
      this.log.warn('no bounce for a message from the null sender');
      return;
    }
    if (this.settings.relayBounces === false) return;
    const refusals: Refusal[] = info.rejected.map((recipient) => {
      const err = info.rejectedErrors?.find((e) => e.recipient === recipient);
      const code = err?.responseCode ?? 550;
      return { recipient, code, reply: err?.response ?? `${code} refused by the relay host` };
    });
    // Whatever goes wrong here, the others got the message: the 250 must stand.
    try {
      const message = bounceMessage({
        reportingMta: this.settings.hostname,
        remoteMta: this.settings.relayHost,
        sender: mailFrom,
        refusals,
        arrival: receivedAt,
        original: body,
        id,
      });
      await (await transportFor(this.settings)).sendMail({ envelope: { from: '', to: [mailFrom] }, raw: message });
      this.log.info({ to: mailFrom, recipients: refusals.length }, 'bounce sent');
    } catch (err) {
      this.log.error({ err, to: mailFrom }, 'bounce could not be sent');
    }
  }
}

/**
 * Closes the smarthost connections Relay handlers of an application opened (call on shutdown).
 *
 * @example
 * ```ts
 * await server.close();
 * closeRelay(app.settings);
 * ```
 */
export function closeRelay(settings: object): void {
  transports.get(settings)?.close();
  transports.delete(settings);
}
