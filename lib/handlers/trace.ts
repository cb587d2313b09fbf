/**
 * Trace header fields (RFC 5321 §4.4): `Return-Path` and `Received`, with the protocol keywords of
 * RFC 3848 and RFC 6531 (ESMTPSA, UTF8SMTPS …).
 */
import type { SMTPRequest } from '../app/request.js';
import { onUnixSocket } from '../protocol/session-info.js';

/** The `with` keyword for the session: SMTP, ESMTP, ESMTPA, ESMTPS, ESMTPSA, or their UTF8 forms. */
export function protocolKeyword(request: SMTPRequest): string {
  const { session, envelope } = request;
  if (!session.esmtp) return 'SMTP';
  const base = envelope.smtputf8 ? 'UTF8SMTP' : 'ESMTP';
  return `${base}${session.secure ? 'S' : ''}${session.user === undefined ? '' : 'A'}`;
}

/** RFC 5322 §3.3 date-time, in UTC. */
export function rfc5322Date(date: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${days[date.getUTCDay()] ?? ''}, ${date.getUTCDate()} ${months[date.getUTCMonth()] ?? ''} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

/**
 * The trace fields to put before a message this server accepted. The recipient is named only when
 * there is one, so a message to many does not list them all to each.
 *
 * @example
 * ```ts
 * const stored = Buffer.concat([Buffer.from(traceHeaders(this.request, 'mx.example.com')), this.request.body]);
 * ```
 */
export function traceHeaders(request: SMTPRequest, hostname: string, now = new Date()): string {
  return `Return-Path: <${request.envelope.mailFrom}>\r\n${receivedHeader(request, hostname, now)}`;
}

/**
 * The `Received` field alone: what a server that passes the message on adds (the
 * `Return-Path` is for final delivery only, RFC 5321 §4.4).
 *
 * @example
 * ```ts
 * const queued = Buffer.concat([Buffer.from(receivedHeader(this.request, 'relay.example.com')), this.request.body]);
 * ```
 */
export function receivedHeader(request: SMTPRequest, hostname: string, now = new Date()): string {
  const { session, envelope } = request;
  // XFORWARD (from a trusted filter in front) names the original client; XCLIENT and the PROXY
  // protocol already made it the session's.
  const f = session.forwarded;
  const helo = f?.helo ?? session.heloName;
  const address = f?.addr ?? session.remoteAddress;
  const name = f?.name ?? session.clientName;
  const where =
    address === ''
      ? f === undefined && onUnixSocket(session)
        ? 'unix socket'
        : 'unknown'
      : `${name === undefined ? '' : `${name} `}[${address}]`;
  const from = `from ${helo || 'unknown'} (${where})`;
  const forClause = envelope.rcptTos.length === 1 ? `\r\n\tfor <${envelope.rcptTos[0] ?? ''}>` : '';
  const tls = session.tls === undefined ? '' : `\r\n\t(using ${session.tls.protocol} with cipher ${session.tls.cipher})`;
  return `Received: ${from}\r\n\tby ${hostname} (Sirocco) with ${protocolKeyword(request)} id ${request.id}${tls}${forClause};\r\n\t${rfc5322Date(now)}\r\n`;
}
