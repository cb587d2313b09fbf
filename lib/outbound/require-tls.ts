/**
 * What an outbound message that needs TLS gets when its exchanger cannot give it: the failure of
 * a destination no exchanger of which answered (REQUIRETLS refused for good, RFC 8689), and the
 * search for another exchanger that offers REQUIRETLS. Used by the lanes and by `sendDirect`.
 */
import { OutboundConnection, type ConnectFailure, type ConnectOptions, type OutgoingMessage, type RecipientResult } from './client.js';
import type { Exchanger } from './resolver.js';

/**
 * What a job gets when no exchanger could be reached. A REQUIRETLS message that cannot have
 * verified TLS is refused for good (RFC 8689, 5.7.30); otherwise the failure is temporary.
 */
export function connectFailureResult(requireTls: boolean, failure: ConnectFailure): ConnectFailure {
  if (requireTls && failure.status === '4.7.5') {
    return { code: 550, status: '5.7.30', reply: `550 5.7.30 REQUIRETLS support required: ${failure.reply}`, exchanger: failure.exchanger };
  }
  return { ...failure, reply: `${failure.code} ${failure.status} ${failure.reply}` };
}

/**
 * RFC 8689 §4.2.1: an exchanger without REQUIRETLS is no path for a REQUIRETLS message, so each
 * exchanger after `tried` is tried, over verified TLS, before the message is given up. When none
 * offers REQUIRETLS the message keeps its refusal (`refused`, 5.7.30); when one could not be
 * reached, it waits for the next try instead, since that one may be the way.
 */
export async function requireTlsElsewhere(
  exchangers: readonly Exchanger[],
  tried: string,
  message: OutgoingMessage,
  refused: RecipientResult[],
  connect: ConnectOptions,
): Promise<RecipientResult[]> {
  let results = refused;
  const after = exchangers.findIndex((e) => e.name === tried);
  for (const exchanger of exchangers.slice(after + 1)) {
    const opened = await OutboundConnection.open([exchanger], { ...connect, verifiedTls: true });
    if (!(opened instanceof OutboundConnection)) {
      if (results === refused) results = message.recipients.map((r) => ({ recipient: r.address, ...opened }));
      continue;
    }
    try {
      const attempt = await opened.send(message);
      if (!opened.lacksRequireTls) return attempt;
    } finally {
      opened.close();
    }
  }
  return results;
}
