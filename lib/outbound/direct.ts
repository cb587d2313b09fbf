/**
 * Delivery in one call, without a queue: look up each recipient domain's exchangers, connect,
 * send, and report what every recipient's exchanger answered. For scripts, tests and programs
 * that do their own retrying.
 */
import { DkimSigner, type DkimKey } from '../auth/sign.js';
import { hostname as osHostname } from 'node:os';
import { OutboundConnection, type OutgoingMessage, type RecipientResult } from './client.js';
import { connectFailureResult, requireTlsElsewhere } from './require-tls.js';
import { MxResolver } from './resolver.js';

/**
 * What {@link sendDirect} sends, and how.
 *
 * @example
 * ```ts
 * const message: DirectMessage = { from: 'me@example.com', to: 'you@example.org', message: 'Subject: hi\r\n\r\nhello\r\n' };
 * ```
 */
export interface DirectMessage {
  /** The envelope sender (`''` for the null sender). */
  readonly from: string;
  /** The envelope recipients. */
  readonly to: string | readonly string[];
  /** The whole message, header and body, with CRLF line ends. */
  readonly message: Buffer | string;
  /** This host's name in EHLO. Default: the machine's host name. */
  readonly hostname?: string | undefined;
  /** The port exchangers are reached on. Default 25. */
  readonly port?: number | undefined;
  /** DNS servers, as `address` or `address:port`. Default: the system's. */
  readonly dnsServers?: readonly string[] | undefined;
  /** Send with REQUIRETLS (RFC 8689): only over verified TLS to an exchanger that offers it. */
  readonly requireTls?: boolean | undefined;
  /** Only over TLS with a verified certificate, even without REQUIRETLS. */
  readonly verifiedTls?: boolean | undefined;
  /** Extra TLS options (`ca` for a private CA). */
  readonly tls?: Readonly<Record<string, unknown>> | undefined;
  /** Milliseconds to connect and to get a greeting. Default 30 000. */
  readonly connectTimeout?: number | undefined;
  /** DKIM keys: the message is signed with those of its From: domain before it goes (see {@link DkimKey}). */
  readonly dkim?: readonly DkimKey[] | undefined;
}

/**
 * What happened, recipient by recipient.
 *
 * @example
 * ```ts
 * const report: DirectReport = await sendDirect(message);
 * if (report.deferred.length > 0) setTimeout(() => retry(report.deferred), 600_000);
 * ```
 */
export interface DirectReport {
  /** One result per recipient, in the order given. */
  readonly recipients: readonly RecipientResult[];
  /** The recipients an exchanger accepted (2xx). */
  readonly accepted: readonly string[];
  /** Those refused for now (4xx): try again later. */
  readonly deferred: readonly string[];
  /** Those refused for good (5xx). */
  readonly failed: readonly string[];
  /** What happened, one line per step, for a log. */
  readonly log: readonly string[];
}

/**
 * Sends a message to its recipients' mail exchangers now (RFC 5321 §5.1: MX by preference, the
 * next one when one is unreachable or refuses to greet, the domain itself without MX records,
 * never a domain with a null MX). Resolves with a result per recipient; it never rejects for an
 * SMTP or DNS failure, which are results.
 *
 * @example
 * ```ts
 * const report = await sendDirect({ from: 'me@example.com', to: ['a@example.org', 'b@example.net'], message });
 * for (const r of report.recipients) console.log(r.recipient, r.code, r.reply);
 * ```
 */
export async function sendDirect(options: DirectMessage): Promise<DirectReport> {
  const recipients = typeof options.to === 'string' ? [options.to] : [...options.to];
  const given = typeof options.message === 'string' ? Buffer.from(options.message) : options.message;
  // Signed over the bytes that go out: nothing changes them after this.
  const content = options.dkim === undefined ? given : await new DkimSigner(options.dkim, 'dkim').sign(given);
  const resolver = new MxResolver({ servers: options.dnsServers, cacheMs: 0, self: options.hostname ?? osHostname() });
  const log: string[] = [];
  const byDomain = new Map<string, string[]>();
  for (const r of recipients) {
    const domain = r.slice(r.lastIndexOf('@') + 1).toLowerCase();
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), r]);
  }
  const results = new Map<string, RecipientResult>();
  for (const [domain, addresses] of byDomain) {
    const fail = (code: number, status: string, reply: string, exchanger?: string): void => {
      for (const recipient of addresses) results.set(recipient, { recipient, code, status, reply, exchanger });
    };
    const destination = await resolver.destination(domain);
    if (destination.kind === 'fail') {
      log.push(`${domain}: ${destination.text}`);
      const code = destination.permanent ? 550 : 451;
      fail(code, destination.status, `${code} ${destination.status} ${destination.text}`);
      continue;
    }
    log.push(`${domain}: exchangers ${destination.exchangers.map((e) => `${e.name} [${e.addresses.join(', ')}]`).join(', ')}`);
    const verifiedTls = options.verifiedTls === true || options.requireTls === true;
    const connect = {
      heloName: options.hostname ?? osHostname(),
      port: options.port,
      verifiedTls,
      tls: options.tls,
      connectTimeout: options.connectTimeout,
    };
    const connection = await OutboundConnection.open(destination.exchangers, connect);
    if (!(connection instanceof OutboundConnection)) {
      log.push(`${domain}: ${connection.reply}`);
      const failure = connectFailureResult(options.requireTls === true, connection);
      fail(failure.code, failure.status, failure.reply, failure.exchanger);
      continue;
    }
    log.push(`${domain}: connected to ${connection.exchanger}${connection.secure ? ' over TLS' : ''}`);
    const message: OutgoingMessage = {
      from: options.from,
      recipients: addresses.map((address) => ({ address })),
      requireTls: options.requireTls,
      eightBit: content.some((byte) => byte > 0x7f),
      size: content.length,
      content: () => content,
    };
    let sent = await connection.send(message);
    connection.close();
    if (options.requireTls === true && connection.lacksRequireTls) {
      log.push(`${domain}: ${connection.exchanger} does not offer REQUIRETLS; trying the other exchangers`);
      sent = await requireTlsElsewhere(destination.exchangers, connection.exchanger, message, sent, connect);
    }
    for (const result of sent) {
      results.set(result.recipient, result);
      log.push(`<${result.recipient}>: ${result.reply.replace(/\r?\n/g, ' ')}`);
    }
  }
  const ordered = recipients.map((r) => results.get(r) ?? { recipient: r, code: 451, status: '4.0.0', reply: 'not attempted' });
  return {
    recipients: ordered,
    accepted: ordered.filter((r) => r.code < 400).map((r) => r.recipient),
    deferred: ordered.filter((r) => r.code >= 400 && r.code < 500).map((r) => r.recipient),
    failed: ordered.filter((r) => r.code >= 500).map((r) => r.recipient),
    log,
  };
}
