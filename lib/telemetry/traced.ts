/**
 * OpenTelemetry spans at no cost until they are wanted. `@opentelemetry/api` is loaded (with
 * `require`, so a span can start at once) only when an SDK has registered a tracer provider, which
 * the API records in one global slot that every copy of API 1.x shares. Until then, and again
 * after `trace.disable()`, a {@link Traced} is empty: no module, no span object, no attribute
 * built, no context propagated. Loading the API up front would cost every server about 4 MiB of
 * resident memory for its 44 modules.
 */
import { createRequire } from 'node:module';
import type { Attributes, Context, Span, SpanOptions, Tracer, TracerProvider } from '@opentelemetry/api';

type Api = typeof import('@opentelemetry/api');

/** Where the API keeps what an SDK registered, for every copy of API major version 1. */
const REGISTRY = Symbol.for('opentelemetry.js.api.1');
const require = createRequire(import.meta.url);
let api: Api | undefined;
let provider: TracerProvider | undefined;
let tracer: Tracer | undefined;

/** The API and this package's tracer, or `null` while no SDK has registered a tracer provider. */
function current(): { readonly api: Api; readonly tracer: Tracer } | null {
  const registry = (globalThis as Record<symbol, { trace?: unknown } | undefined>)[REGISTRY];
  if (registry?.trace === undefined) return null;
  api ??= require('@opentelemetry/api') as Api;
  const now = api.trace.getTracerProvider();
  if (now !== provider || tracer === undefined) {
    provider = now;
    tracer = now.getTracer('sirocco');
  }
  return { api, tracer };
}

/** The kinds of span made here, as the API numbers them. */
export const SpanKinds = { INTERNAL: 0, SERVER: 1, CLIENT: 2 } as const;
type Kind = (typeof SpanKinds)[keyof typeof SpanKinds];
const OPTIONS: Readonly<Record<Kind, SpanOptions>> = { 0: { kind: 0 }, 1: { kind: 1 }, 2: { kind: 2 } };
/** The API's `SpanStatusCode.ERROR`. */
const ERROR = 2;

/**
 * One span and the context that makes it the parent of what runs inside it (a handler's hooks,
 * `authenticate`); empty when no SDK is registered.
 */
export class Traced {
  readonly #span: Span | null;
  readonly #api: Api | null;
  /** The context with this span active, or `null` when it carries no trace. */
  readonly #context: Context | null;
  #ended = false;

  /**
   * Starts a span. `parent`: the span this one belongs to (a session's), `'active'` for whichever
   * span is active now (a caller's, when sending), or `null` for a root span. Without an SDK, the
   * one empty `Traced` (nothing is allocated per span).
   */
  static start(name: string, kind: Kind, parent: Traced | 'active' | null): Traced {
    const now = current();
    if (now === null) return Traced.#EMPTY;
    const { api, tracer } = now;
    const parentContext = parent === 'active' ? api.context.active() : ((parent === null ? null : parent.#context) ?? api.ROOT_CONTEXT);
    const span = tracer.startSpan(name, OPTIONS[kind], parentContext);
    return new Traced(span, api, api.isSpanContextValid(span.spanContext()) ? api.trace.setSpan(parentContext, span) : null);
  }

  private constructor(span: Span | null, api: Api | null, context: Context | null) {
    this.#span = span;
    this.#api = api;
    this.#context = context;
    this.#ended = span === null;
  }

  /** Whether attributes would be kept: build them only then. */
  get recording(): boolean {
    return this.#span !== null && this.#span.isRecording();
  }

  /** The span's id, when it has one (for tests and logs). */
  get spanId(): string | undefined {
    return this.#context === null ? undefined : this.#span?.spanContext().spanId;
  }

  /** Runs `fn` with this span as the active one (spans `fn` starts are its children). */
  run<T>(fn: () => T): T {
    return this.#context === null || this.#api === null ? fn() : this.#api.context.with(this.#context, fn);
  }

  /** `fn.call(self, a, b)` with this span as the active one: {@link run} for a method, with no closure made. */
  call<S, A, B, T>(fn: (this: S, a: A, b: B) => T, self: S, a: A, b: B): T {
    return this.#context === null || this.#api === null ? fn.call(self, a, b) : this.#api.context.with(this.#context, fn, self, a, b);
  }

  /** Sets attributes when the span is recording; `make` is not called otherwise. */
  annotate(make: () => Attributes): void {
    if (this.#span?.isRecording() === true) this.#span.setAttributes(make());
  }

  /** Adds an event when the span is recording. */
  event(name: string, make: () => Attributes): void {
    if (this.#span?.isRecording() === true) this.#span.addEvent(name, make());
  }

  /** A failure (a hook that threw, a handler past its time): recorded, and the span is an error. */
  failed(err: unknown, type = err instanceof Error ? err.name : '_OTHER'): void {
    const span = this.#span;
    if (span === null || !span.isRecording()) return;
    if (err instanceof Error) span.recordException(err);
    span.setAttribute('error.type', type);
    span.setStatus({ code: ERROR, message: err instanceof Error ? err.message : String(err) });
  }

  /** An outcome that is an error without an exception (no exchanger answered): the span's status. */
  error(message: string): void {
    if (this.#span?.isRecording() === true) this.#span.setStatus({ code: ERROR, message });
  }

  /** Whether the span has ended (the empty one: always). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Ends the span, once. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#span?.end();
  }

  /** The `Traced` of every span while no SDK is registered: it records nothing, and counts as ended. */
  static readonly #EMPTY = new Traced(null, null, null);
}
