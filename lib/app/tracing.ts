/**
 * OpenTelemetry spans for the server's sessions, transactions and AUTH exchanges, through
 * `@opentelemetry/api` alone: until the application registers an SDK, every span is the API's
 * non-recording one, and nothing here builds an attribute or a context for it.
 *
 * Attribute names follow the semantic conventions where they have one (`client.address`,
 * `server.port`, `network.transport`, `tls.protocol.version`, `error.type`); what SMTP alone has is
 * under `sirocco.` (`sirocco.reply.code`, `sirocco.queue_id`). Mail addresses, AUTH user names
 * and message content are never put on a span: traces often leave the host.
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanOptions,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { Reply } from '../protocol/reply.js';
import { onUnixSocket, type Peer, type SessionInfo } from '../protocol/session-info.js';

let provider: TracerProvider | undefined;
let tracer: Tracer | undefined;

/** The tracer spans come from: the global provider's, asked again only when the provider changes (`trace.disable()`). */
function currentTracer(): Tracer {
  const now = trace.getTracerProvider();
  if (now !== provider || tracer === undefined) {
    provider = now;
    tracer = now.getTracer('sirocco');
  }
  return tracer;
}

/** The options of each kind of span, made once. */
const OPTIONS: Readonly<Record<SpanKind, SpanOptions>> = {
  [SpanKind.INTERNAL]: { kind: SpanKind.INTERNAL },
  [SpanKind.SERVER]: { kind: SpanKind.SERVER },
  [SpanKind.CLIENT]: { kind: SpanKind.CLIENT },
  [SpanKind.PRODUCER]: { kind: SpanKind.PRODUCER },
  [SpanKind.CONSUMER]: { kind: SpanKind.CONSUMER },
};

/**
 * One span and the context that makes it the parent of what runs inside it (the handler's hooks,
 * `authenticate`): `null` when the span carries no trace (no SDK), so nothing is propagated.
 */
export class Traced {
  readonly span: Span;
  readonly #context: Context | null;
  #ended = false;

  /** `parent`: the span this one belongs to (a session's), or none for a root span. */
  constructor(name: string, kind: SpanKind, parent: Traced | null) {
    const parentContext = (parent === null ? null : parent.#context) ?? ROOT_CONTEXT;
    const span = (this.span = currentTracer().startSpan(name, OPTIONS[kind], parentContext));
    // The API's no-op span carries INVALID_SPAN_CONTEXT itself: no SDK, nothing to check or propagate.
    const own = span.spanContext();
    this.#context = own !== INVALID_SPAN_CONTEXT && isSpanContextValid(own) ? trace.setSpan(parentContext, span) : null;
  }

  /** Whether attributes would be kept: build them only then. */
  get recording(): boolean {
    return this.span.isRecording();
  }

  /** Runs `fn` with this span as the active one (spans `fn` starts are its children). */
  run<T>(fn: () => T): T {
    return this.#context === null ? fn() : context.with(this.#context, fn);
  }

  /** Sets attributes when the span is recording; `make` is not called otherwise. */
  annotate(make: () => Attributes): void {
    if (this.span.isRecording()) this.span.setAttributes(make());
  }

  /** A failure (a hook that threw, a handler past its time): recorded, and the span is an error. */
  failed(err: unknown, type = err instanceof Error ? err.name : '_OTHER'): void {
    if (!this.span.isRecording()) return;
    if (err instanceof Error) this.span.recordException(err);
    this.span.setAttribute('error.type', type);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }

  /** Ends the span once, with the reply that ended what it measured when there was one. */
  end(reply?: Reply, outcome?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.span.isRecording()) {
      if (reply !== undefined) this.span.setAttributes(replyAttributes(reply));
      if (outcome !== undefined) this.span.setAttribute('sirocco.outcome', outcome);
    }
    this.span.end();
  }
}

/** A reply's code, enhanced status and catalogue name, as span attributes. */
export function replyAttributes(reply: Reply): Attributes {
  const attributes: Attributes = { 'sirocco.reply.code': reply.code };
  if (reply.enhanced !== undefined) attributes['sirocco.reply.status'] = reply.enhanced.join('.');
  if (reply.name !== undefined) attributes['sirocco.reply.name'] = reply.name;
  return attributes;
}

/** A connection's span (`smtp.session`), with the socket's addresses as the server saw them. */
export function sessionSpan(peer: Peer, lmtp: boolean): Traced {
  const traced = new Traced('smtp.session', SpanKind.SERVER, null);
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

export { SpanKind };
