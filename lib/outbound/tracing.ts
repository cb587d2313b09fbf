/**
 * OpenTelemetry spans for sending, through `@opentelemetry/api` alone (no-ops until the
 * application registers an SDK): `smtp.connect` for reaching a destination's exchangers, and
 * `smtp.deliver` for one delivery attempt, a message's transaction with one exchanger. Both are
 * children of whatever span is active when sending starts (a handler's transaction, for
 * `sendDirect` in `data()`), or roots (the queue's tries). No mail address is put on a span.
 */
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';

let provider: TracerProvider | undefined;
let tracer: Tracer | undefined;

/** The tracer for sending: the global provider's, asked again only when the provider changes. */
function currentTracer(): Tracer {
  const now = trace.getTracerProvider();
  if (now !== provider || tracer === undefined) {
    provider = now;
    tracer = now.getTracer('sirocco');
  }
  return tracer;
}

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
export function connectSpan(): Span {
  return currentTracer().startSpan('smtp.connect', { kind: SpanKind.CLIENT }, context.active());
}

/** An exchanger (one of its addresses) that could not be used: an event on the connect span. */
export function exchangerSkipped(span: Span, endpoint: Endpoint, failure: Outcome): void {
  if (!span.isRecording()) return;
  span.addEvent('exchanger not usable', { ...endpointAttributes(endpoint), 'sirocco.reply': failure.reply });
}

/** The connect span's end: the session's endpoint, or the last failure. */
export function connectEnded(span: Span, outcome: Endpoint | Outcome, secure = false): void {
  if (span.isRecording()) {
    if (!('reply' in outcome)) {
      span.setAttributes({ ...endpointAttributes(outcome), 'sirocco.tls': secure });
    } else {
      span.setAttributes({ 'sirocco.reply.code': outcome.code, 'sirocco.reply.status': outcome.status, 'sirocco.reply': outcome.reply });
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.reply });
    }
  }
  span.end();
}

/** One delivery attempt: a message's transaction with the exchanger at `endpoint`. */
export function deliverySpan(endpoint: Endpoint, recipients: number, queueId: string | undefined): Span {
  const span = currentTracer().startSpan('smtp.deliver', { kind: SpanKind.CLIENT }, context.active());
  if (span.isRecording()) {
    span.setAttributes({ ...endpointAttributes(endpoint), 'sirocco.recipients': recipients });
    if (queueId !== undefined) span.setAttribute('sirocco.queue_id', queueId);
  }
  return span;
}

/**
 * The attempt's end: the reply that decided it (the first accepted recipient's, else the first
 * one's), and how many recipients were accepted, deferred and refused. No recipient accepted is
 * an error.
 */
export function deliveryEnded(span: Span, results: readonly Outcome[]): void {
  if (span.isRecording()) {
    const accepted = results.filter((r) => r.code < 400).length;
    const refused = results.filter((r) => r.code >= 500).length;
    const decisive = results.find((r) => r.code < 400) ?? results[0];
    span.setAttributes({
      'sirocco.recipients.accepted': accepted,
      'sirocco.recipients.deferred': results.length - accepted - refused,
      'sirocco.recipients.refused': refused,
    });
    if (decisive !== undefined) {
      span.setAttributes({ 'sirocco.reply.code': decisive.code, 'sirocco.reply.status': decisive.status, 'sirocco.reply': decisive.reply });
    }
    if (accepted === 0) span.setStatus({ code: SpanStatusCode.ERROR, message: decisive?.reply ?? 'no recipient' });
  }
  span.end();
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
    return recipients.map(() => ({ code, status: enhanced?.join('.') ?? `${Math.floor(code / 100)}.0.0`, reply: message }));
  }
  return recipients.map((recipient) => {
    const refused = answer.rejectedErrors?.find((e) => e.recipient === recipient);
    if (refused === undefined) return { code: 250, status: '2.0.0', reply: answer.response };
    const code = refused.responseCode ?? 550;
    return { code, status: `${Math.floor(code / 100)}.0.0`, reply: refused.response ?? `${code} refused` };
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
