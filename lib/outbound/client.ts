/**
 * Sends messages to a destination's exchangers with nodemailer's SMTP connection: tries each
 * exchanger (and each of its addresses) in order until one greets and says EHLO, upgrades with
 * STARTTLS when offered (verified when the message or the domain asks for it), and turns every
 * reply into a result per recipient. One open connection carries several messages.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type { RcptDsn } from '../protocol/dsn.js';
import { statusOf } from './bounce.js';
import type { Exchanger } from './resolver.js';
import { certificateProblem, type TlsResultType } from './tls-report.js';
import { connectEnded, connectSpan, deliveryEnded, deliverySpan, exchangerSkipped, type Endpoint } from './tracing.js';

/**
 * One recipient's outcome: the reply that decided it.
 *
 * @example
 * ```ts
 * const line = (r: RecipientResult) => `${r.recipient}: ${r.code} ${r.status} via ${r.exchanger ?? 'no exchanger'}`;
 * ```
 */
export interface RecipientResult {
  /** The recipient's address. */
  readonly recipient: string;
  /** The reply code: 2xx delivered, 4xx try again later, 5xx never. */
  readonly code: number;
  /** The enhanced status code (RFC 3463), from the reply or made up from its class. */
  readonly status: string;
  /** The reply as received (or what happened instead: "connection refused"). */
  readonly reply: string;
  /** The exchanger that answered, when one did. */
  readonly exchanger?: string | undefined;
  /**
   * Accepted by an exchanger that does not offer DSN: no notice will come from further on, so
   * the queue sends a `relayed` one to a sender whose NOTIFY asked for SUCCESS (RFC 3461 §5.2.2).
   */
  readonly relayed?: boolean | undefined;
}

/** One message as sent: the envelope and a way to read the content (again for each attempt). */
export interface OutgoingMessage {
  readonly from: string;
  readonly recipients: readonly { readonly address: string; readonly dsn?: RcptDsn | undefined }[];
  readonly ret?: 'FULL' | 'HDRS' | undefined;
  readonly envid?: string | undefined;
  /** RFC 8689: only over verified TLS to an exchanger that offers REQUIRETLS, passed on. */
  readonly requireTls?: boolean | undefined;
  /** Whether the content has 8-bit bytes (sent with BODY=8BITMIME). */
  readonly eightBit?: boolean | undefined;
  readonly size?: number | undefined;
  readonly content: () => Readable | Buffer;
  /** The queue id, for the delivery attempt's span. */
  readonly id?: string | undefined;
}

/** How connections are made. */
export interface ConnectOptions {
  /** The port every exchanger is reached on. Default 25. */
  readonly port?: number | undefined;
  /** This host's name in EHLO. */
  readonly heloName: string;
  /** Only verified TLS (a certificate that names the exchanger, from a trusted CA). */
  readonly verifiedTls?: boolean | undefined;
  /** Extra TLS options (`ca` for a private CA, …). */
  readonly tls?: Readonly<Record<string, unknown>> | undefined;
  /** Milliseconds for the TCP connection and for the greeting each. Default 30 000. */
  readonly connectTimeout?: number | undefined;
  /** Milliseconds of silence during a session before it is given up. Default 300 000 (RFC 5321 §4.5.3.2). */
  readonly socketTimeout?: number | undefined;
  readonly logger?: Logger | undefined;
  /** Told of each session's TLS outcome (for TLS reporting): how it went with each exchanger tried. */
  readonly tlsOutcome?: ((outcome: TlsOutcome) => void) | undefined;
}

/** How TLS went with one exchanger: `problem` names what failed. */
export interface TlsOutcome {
  readonly exchanger: string;
  readonly address: string;
  readonly problem?: TlsResultType | undefined;
  readonly reason?: string | undefined;
}

/** Why no exchanger could be reached, as a result for each recipient. */
export interface ConnectFailure {
  readonly code: number;
  readonly status: string;
  readonly reply: string;
  readonly exchanger?: string | undefined;
}

type SMTPConnectionClass = typeof SMTPConnection;
let loaded: Promise<SMTPConnectionClass> | undefined;
/** nodemailer's client, loaded with the first delivery. */
function smtpConnection(): Promise<SMTPConnectionClass> {
  loaded ??= import('nodemailer/lib/smtp-connection/index.js').then((m) => m.default);
  return loaded;
}

/** Error codes that mean the connection itself is gone. */
const CONNECTION_GONE = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'ETLS', 'EPROTOCOL', 'ESTREAM']);

/** An open session with one exchanger. */
export class OutboundConnection {
  readonly exchanger: string;
  readonly #endpoint: Endpoint;
  readonly #connection: SMTPConnection;
  #alive = true;
  #lacksRequireTls = false;

  private constructor(endpoint: Endpoint, connection: SMTPConnection) {
    this.exchanger = endpoint.exchanger;
    this.#endpoint = endpoint;
    this.#connection = connection;
    connection.once('end', () => (this.#alive = false));
  }

  /** Whether it can carry another message. */
  get alive(): boolean {
    return this.#alive;
  }

  /**
   * Whether a REQUIRETLS message could not be sent because this exchanger does not offer
   * REQUIRETLS (after verified TLS): RFC 8689 §4.2.1 then has the client try the domain's other
   * exchangers before it gives the message up.
   */
  get lacksRequireTls(): boolean {
    return this.#lacksRequireTls;
  }

  /** Whether the session runs over TLS. */
  get secure(): boolean {
    return this.#connection.secure;
  }

  /**
   * Connects to the first exchanger that answers (in order, each of its addresses in turn): a
   * refused or silent connection, a 4xx or 5xx greeting, a failed EHLO or TLS handshake moves on.
   */
  static async open(exchangers: readonly Exchanger[], options: ConnectOptions): Promise<OutboundConnection | ConnectFailure> {
    const Connection = await smtpConnection();
    let last: ConnectFailure = { code: 451, status: '4.4.1', reply: 'no exchanger to connect to' };
    const span = connectSpan();
    for (const exchanger of exchangers) {
      for (const address of exchanger.addresses) {
        const connection = new Connection({
          host: address,
          port: options.port ?? 25,
          name: options.heloName,
          servername: exchanger.name,
          connectionTimeout: options.connectTimeout ?? 30_000,
          greetingTimeout: options.connectTimeout ?? 30_000,
          socketTimeout: options.socketTimeout ?? 300_000,
          ...(options.verifiedTls === true ? { requireTLS: true } : { opportunisticTLS: true }),
          tls: { rejectUnauthorized: options.verifiedTls === true, servername: exchanger.name, ...options.tls },
          logger: false,
        });
        connection.on('error', () => undefined);
        // A failure before the session is ready comes as an 'error' event, not through the callback.
        const err = await new Promise<SMTPConnection.SMTPError | undefined>((resolve) => {
          const failed = (e: SMTPConnection.SMTPError): void => resolve(e);
          connection.once('error', failed);
          connection.connect((e) => {
            connection.off('error', failed);
            resolve(e);
          });
        });
        const endpoint = { exchanger: exchanger.name, address, port: options.port ?? 25 };
        if (err === undefined) {
          connectEnded(span, endpoint, connection.secure);
          // Opened: over TLS verified as asked, or (not asked) over TLS at all.
          options.tlsOutcome?.({ exchanger: exchanger.name, address, ...(connection.secure ? {} : { problem: 'starttls-not-supported' }) });
          return new OutboundConnection(endpoint, connection);
        }
        const tls = failedTls(err);
        if (tls !== undefined) options.tlsOutcome?.({ exchanger: exchanger.name, address, ...tls });
        connection.close();
        last = connectFailure(err, exchanger.name, address, options.verifiedTls === true);
        exchangerSkipped(span, endpoint, last);
        options.logger?.info({ exchanger: exchanger.name, address, reply: last.reply }, 'exchanger not usable, trying the next');
      }
    }
    connectEnded(span, last);
    return last;
  }

  /**
   * Sends one message; resolves with a result for each recipient, never rejects. Recipients with
   * different DSN parameters go in separate transactions (one NOTIFY and ORCPT per transaction).
   */
  async send(message: OutgoingMessage): Promise<RecipientResult[]> {
    const results: RecipientResult[] = [];
    for (const group of dsnGroups(message.recipients)) {
      if (!this.#alive) {
        results.push(
          ...group.addresses.map((recipient) => this.#result(recipient, 451, '4.4.2', 'connection lost before the message was sent')),
        );
        continue;
      }
      const span = deliverySpan(this.#endpoint, group.addresses.length, message.id);
      const sent = await this.#transaction(message, group);
      deliveryEnded(span, sent);
      results.push(...sent);
    }
    return results;
  }

  async #transaction(message: OutgoingMessage, group: DsnGroup): Promise<RecipientResult[]> {
    const envelope = {
      from: message.from,
      to: group.addresses,
      ...(message.size === undefined ? {} : { size: message.size }),
      ...(message.eightBit === true ? { use8BitMime: true } : {}),
      ...(message.requireTls === true ? { requireTLSExtensionEnabled: true } : {}),
      ...dsnOptions(message, group.dsn),
    } as SMTPConnection.Envelope;
    const outcome = await new Promise<{ err?: SMTPConnection.SMTPError; info?: SMTPConnection.SentMessageInfo }>((resolve) =>
      this.#connection.send(envelope, message.content(), (err, info) => resolve(err ? { err: err } : { info })),
    );
    if (outcome.info !== undefined) return this.#fromInfo(group.addresses, outcome.info, !this.#offersDsn(outcome.info));
    const err = outcome.err as SMTPConnection.SMTPError & { rejectedErrors?: (SMTPConnection.SMTPError & { recipient?: string })[] };
    if (err.code !== undefined && CONNECTION_GONE.has(err.code)) {
      this.#alive = false;
      this.#connection.close();
    } else {
      // The transaction failed but the session stands: RSET before the next message.
      await new Promise<void>((resolve) => this.#connection.reset(() => resolve()));
    }
    if (err.code === 'EREQUIRETLS') {
      this.#lacksRequireTls = true;
      return group.addresses.map((r) => this.#result(r, 550, '5.7.30', `REQUIRETLS support required: ${err.message}`));
    }
    const refusedOne = new Map((err.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e]));
    return group.addresses.map((recipient) => {
      const own = refusedOne.get(recipient);
      if (own?.responseCode !== undefined) return this.#replyResult(recipient, own.responseCode, own.response ?? '');
      if (err.responseCode !== undefined) return this.#replyResult(recipient, err.responseCode, err.response ?? '');
      return this.#result(recipient, 451, '4.4.2', `connection failed: ${err.message}`);
    });
  }

  /**
   * Whether the exchanger's EHLO offered DSN, from the keywords nodemailer reports with each sent
   * message (`info.ehlo`, the EHLO reply's lines after the first). nodemailer passes DSN
   * parameters on only when DSN was offered; without that list, DSN counts as offered, so no
   * notice goes out that another host might send too.
   */
  #offersDsn(info: SMTPConnection.SentMessageInfo): boolean {
    const lines = (info as { ehlo?: unknown }).ehlo;
    if (!Array.isArray(lines)) return true;
    return lines.some((line) => typeof line === 'string' && /^DSN(?:\s|$)/i.test(line));
  }

  #fromInfo(addresses: readonly string[], info: SMTPConnection.SentMessageInfo, relayed = false): RecipientResult[] {
    const refused = new Map((info.rejectedErrors ?? []).map((e) => [(e as { recipient?: string }).recipient ?? '', e] as const));
    return addresses.map((recipient) => {
      const own = refused.get(recipient);
      if (own !== undefined || info.rejected.includes(recipient)) {
        return this.#replyResult(recipient, own?.responseCode ?? 550, own?.response ?? '550 refused');
      }
      const result = this.#replyResult(recipient, 250, info.response);
      return relayed ? { ...result, relayed: true } : result;
    });
  }

  #replyResult(recipient: string, code: number, reply: string): RecipientResult {
    return this.#result(recipient, code, statusOf(code, reply), reply);
  }

  #result(recipient: string, code: number, status: string, reply: string): RecipientResult {
    return { recipient, code, status, reply, exchanger: this.exchanger };
  }

  /** Ends the session politely (QUIT). */
  close(): void {
    if (this.#alive) this.#connection.quit();
    this.#alive = false;
  }
}

/** What a failed connection says of TLS, when it failed there. */
function failedTls(err: SMTPConnection.SMTPError): Pick<TlsOutcome, 'problem' | 'reason'> | undefined {
  const original = (err as { originalCode?: string }).originalCode;
  const byCode = certificateProblem(original);
  if (byCode !== undefined) return { problem: byCode, reason: original };
  if (err.command !== 'STARTTLS' && err.code !== 'ETLS') return undefined;
  if (err.responseCode !== undefined) return { problem: 'starttls-not-supported', reason: err.response };
  return { problem: certificateProblem(undefined, err.message) ?? 'validation-failure', reason: err.message };
}

function connectFailure(err: SMTPConnection.SMTPError, exchanger: string, address: string, verified: boolean): ConnectFailure {
  const where = `${exchanger} [${address}]`;
  if (verified && (err.code === 'ETLS' || err.command === 'STARTTLS' || /STARTTLS|certificate|TLS/i.test(err.message))) {
    return { code: 451, status: '4.7.5', reply: `${where}: no verified TLS: ${err.message}`, exchanger };
  }
  if (err.responseCode !== undefined && err.responseCode >= 400) {
    // A refusing greeting is the exchanger's business today; another one, or a later try, may take it.
    return { code: 451, status: '4.4.1', reply: `${where} said: ${err.response ?? err.message}`, exchanger };
  }
  return { code: 451, status: '4.4.1', reply: `${where}: ${err.message}`, exchanger };
}

/** Recipients that share their DSN parameters: one transaction carries one NOTIFY and ORCPT. */
export interface DsnGroup {
  readonly addresses: string[];
  readonly dsn: RcptDsn | undefined;
}

/** The recipients grouped by their DSN parameters, in order of first appearance. */
export function dsnGroups(recipients: OutgoingMessage['recipients']): DsnGroup[] {
  const groups = new Map<string, DsnGroup>();
  for (const { address, dsn } of recipients) {
    const key = JSON.stringify(dsn ?? null);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { addresses: [address], dsn });
    else group.addresses.push(address);
  }
  return [...groups.values()];
}

/**
 * The DSN parameters of one transaction in the shape nodemailer takes them. Declared here rather
 * than taken from nodemailer's types, so that the declarations Sirocco ships name no package
 * that is only a development dependency.
 */
export interface DsnParameters {
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  notify?: string[];
  orcpt?: string;
}

/** The DSN parameters of one transaction, as nodemailer takes them (sent when the server offers DSN). */
export function dsnOptions(
  message: { readonly ret?: 'FULL' | 'HDRS' | undefined; readonly envid?: string | undefined } | undefined,
  rcpt: RcptDsn | undefined,
): { dsn?: DsnParameters } {
  if (message?.ret === undefined && message?.envid === undefined && rcpt === undefined) return {};
  const notify = rcpt?.notify;
  return {
    dsn: {
      ...(message?.ret === undefined ? {} : { ret: message.ret }),
      ...(message?.envid === undefined ? {} : { envid: message.envid }),
      ...(notify === undefined ? {} : { notify: notify === 'NEVER' ? ['NEVER'] : [...notify] }),
      ...(rcpt?.orcpt === undefined ? {} : { orcpt: `${rcpt.orcpt.type};${rcpt.orcpt.address}` }),
    },
  };
}
