/**
 * The server's spans: a session, its AUTH exchanges and its transactions (see `telemetry/traced.ts`
 * for how they cost nothing until an SDK is registered).
 *
 * Attribute names follow the semantic conventions where they have one (`client.address`,
 * `server.port`, `network.transport`, `tls.protocol.version`, `error.type`); what SMTP alone has is
 * under `sirocco.` (`sirocco.reply.code`, `sirocco.queue_id`). Mail addresses, AUTH user names
 * and message content are never put on a span: traces often leave the host.
 */
import type { Attributes } from '@opentelemetry/api';
import type { Reply } from '../protocol/reply.js';
import { onUnixSocket, type Peer, type SessionInfo } from '../protocol/session-info.js';
import { SpanKinds, Traced } from '../telemetry/traced.js';

export { SpanKinds, Traced };

/** Ends a span with the reply that ended what it measured, and how it ended, when known. */
export function endWith(traced: Traced, reply: Reply | undefined, outcome: string): void {
  if (traced.ended) return;
  if (traced.recording) traced.annotate(() => ({ ...(reply === undefined ? {} : replyAttributes(reply)), 'sirocco.outcome': outcome }));
  traced.end();
}

/** A reply's code, enhanced status and catalogue name, as span attributes. */
function replyAttributes(reply: Reply): Attributes {
  const attributes: Attributes = { 'sirocco.reply.code': reply.code };
  if (reply.enhanced !== undefined) attributes['sirocco.reply.status'] = reply.enhanced.join('.');
  if (reply.name !== undefined) attributes['sirocco.reply.name'] = reply.name;
  return attributes;
}

/** A connection's span (`smtp.session`), with the socket's addresses as the server saw them. */
export function sessionSpan(peer: Peer, lmtp: boolean): Traced {
  const traced = Traced.start('smtp.session', SpanKinds.SERVER, null);
  // Checked first, so a server with no tracing SDK makes no closure per connection.
  if (!traced.recording) return traced;
  traced.annotate(() => {
    const unix = onUnixSocket(peer);
    const attributes: Attributes = {
      'sirocco.connection.id': peer.id,
      'network.protocol.name': lmtp ? 'lmtp' : 'smtp',
      'network.transport': unix ? 'unix' : 'tcp',
      'server.address': peer.localAddress,
    };
    if (unix) return attributes;
    return {
      ...attributes,
      'server.port': peer.localPort,
      'network.peer.address': peer.remoteAddress,
      'network.peer.port': peer.remotePort,
    };
  });
  return traced;
}

/** What the session span says at its end: the client (as a proxy named it), its HELO name, TLS. */
export function sessionEnded(traced: Traced, info: SessionInfo): void {
  if (!traced.recording) return;
  traced.annotate(() => {
    const attributes: Attributes = {};
    if (info.remoteAddress !== '') {
      attributes['client.address'] = info.remoteAddress;
      attributes['client.port'] = info.remotePort;
    }
    if (info.heloName !== '') attributes['sirocco.helo'] = info.heloName;
    if (info.tls !== undefined) {
      attributes['tls.protocol.name'] = 'tls';
      attributes['tls.protocol.version'] = info.tls.protocol.replace(/^TLSv/, '');
      attributes['tls.cipher'] = info.tls.cipher;
    }
    if (info.user !== undefined) attributes['sirocco.authenticated'] = true;
    return attributes;
  });
  traced.end();
}
