/**
 * The spans of sending (see `telemetry/traced.ts`: nothing until an SDK is registered):
 * `smtp.connect` for reaching a destination's exchangers, and `smtp.deliver` for one delivery
 * attempt, a message's transaction with one exchanger. Both are children of whatever span is
 * active when sending starts (a handler's transaction, for `sendDirect` in `data()`), or roots
 * (the queue's tries). No mail address is put on a span.
 */
import { SpanKinds, Traced } from '../telemetry/traced.js';
import { statusOf } from './bounce.js';

/** A reply as sending reports it (a recipient's result, or why no exchanger could be used). */
interface Outcome {
  readonly code: number;
  readonly status: string;
  readonly reply: string;
}

/** Where a session goes: the exchanger's name, its address (when known: a pool's is not), the port. */
export interface Endpoint {
  readonly exchanger: string;
  readonly address?: string | undefined;
  readonly port: number;
}

/** The span of connecting to the first usable exchanger of a list. */
export function connectSpan(): Traced {
  return Traced.start('smtp.connect', SpanKinds.CLIENT, 'active');
}

/** An exchanger (one of its addresses) that could not be used: an event on the connect span. */
export function exchangerSkipped(traced: Traced, endpoint: Endpoint, failure: Outcome): void {
  traced.event('exchanger not usable', () => ({ ...endpointAttributes(endpoint), 'sirocco.reply': failure.reply }));
}

/** The connect span's end: the session's endpoint, or the last failure. */
export function connectEnded(traced: Traced, outcome: Endpoint | Outcome, secure = false): void {
  if (!('reply' in outcome)) {
    traced.annotate(() => ({ ...endpointAttributes(outcome), 'sirocco.tls': secure }));
  } else {
    traced.annotate(() => ({ 'sirocco.reply.code': outcome.code, 'sirocco.reply.status': outcome.status, 'sirocco.reply': outcome.reply }));
    traced.error(outcome.reply);
  }
  traced.end();
}

/** One delivery attempt: a message's transaction with the exchanger at `endpoint`. */
export function deliverySpan(endpoint: Endpoint, recipients: number, queueId: string | undefined): Traced {
  const traced = Traced.start('smtp.deliver', SpanKinds.CLIENT, 'active');
  traced.annotate(() => ({
    ...endpointAttributes(endpoint),
    'sirocco.recipients': recipients,
    ...(queueId === undefined ? {} : { 'sirocco.queue_id': queueId }),
  }));
  return traced;
}

/**
 * The attempt's end: the reply that decided it (the first accepted recipient's, else the first
 * one's), and how many recipients were accepted, deferred and refused. No recipient accepted is
 * an error.
 */
export function deliveryEnded(traced: Traced, results: readonly Outcome[]): void {
  const accepted = results.filter((r) => r.code < 400).length;
  const decisive = results.find((r) => r.code < 400) ?? results[0];
  traced.annotate(() => {
    const refused = results.filter((r) => r.code >= 500).length;
    return {
      'sirocco.recipients.accepted': accepted,
      'sirocco.recipients.deferred': results.length - accepted - refused,
      'sirocco.recipients.refused': refused,
      ...(decisive === undefined
        ? {}
        : { 'sirocco.reply.code': decisive.code, 'sirocco.reply.status': decisive.status, 'sirocco.reply': decisive.reply }),
    };
  });
  if (accepted === 0) traced.error(decisive?.reply ?? 'no recipient');
  traced.end();
}

/**
 * A smarthost's answer to one transaction as outcomes per recipient: nodemailer's sent-message
 * info (its refused recipients among the accepted), or the error that refused them all.
 */
export function smarthostOutcomes(
  recipients: readonly string[],
  answer:
    | {
        readonly response: string;
        readonly rejectedErrors?:
          readonly { recipient?: string | undefined; responseCode?: number | undefined; response?: string | undefined }[] | undefined;
      }
    | { readonly failed: { readonly code: number; readonly enhanced?: readonly number[] | undefined; readonly message: string } },
): Outcome[] {
  if ('failed' in answer) {
    const { code, enhanced, message } = answer.failed;
    return recipients.map(() => ({ code, status: enhanced?.join('.') ?? statusOf(code, message), reply: message }));
  }
  return recipients.map((recipient) => {
    const refused = answer.rejectedErrors?.find((e) => e.recipient === recipient);
    if (refused === undefined) return { code: 250, status: statusOf(250, answer.response), reply: answer.response };
    const code = refused.responseCode ?? 550;
    const reply = refused.response ?? `${code} refused`;
    return { code, status: statusOf(code, reply), reply };
  });
}

function endpointAttributes(endpoint: Endpoint): Record<string, string | number> {
  const attributes: Record<string, string | number> = {
    'server.address': endpoint.exchanger,
    'server.port': endpoint.port,
    'network.transport': 'tcp',
    'network.protocol.name': 'smtp',
  };
  if (endpoint.address !== undefined) attributes['network.peer.address'] = endpoint.address;
  return attributes;
}
