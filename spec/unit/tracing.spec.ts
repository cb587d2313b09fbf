/**
 * The server's spans without an SDK (nothing built, nothing propagated) and with one registered
 * late or replaced: the spans follow the global provider as it is now.
 */
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { SpanKind, Traced } from '../../lib/app/tracing.js';

afterAll(() => trace.disable());

function register(): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  return exporter;
}

describe('Traced', () => {
  it('without an SDK: not recording, no attributes built, the hook runs with no span active', () => {
    const traced = new Traced('smtp.session', SpanKind.SERVER, null);
    expect(traced.recording).toBe(false);
    let built = 0;
    traced.annotate(() => {
      built++;
      return { a: 1 };
    });
    expect(built).toBe(0);
    expect(traced.run(() => trace.getActiveSpan())).toBeUndefined();
    expect(new Traced('smtp.transaction', SpanKind.INTERNAL, traced).run(() => 42)).toBe(42);
    traced.failed(new Error('x'));
    traced.end();
    traced.end();
  });

  it('an SDK registered after the first spans gets the next ones (parents given without a context manager); a replaced one is followed', () => {
    new Traced('before', SpanKind.INTERNAL, null).end();
    const first = register();
    const session = new Traced('smtp.session', SpanKind.SERVER, null);
    const child = new Traced('smtp.transaction', SpanKind.INTERNAL, session);
    child.end();
    session.end();
    expect(first.getFinishedSpans().map((s) => [s.name, s.parentSpanContext?.spanId])).toEqual([
      ['smtp.transaction', session.span.spanContext().spanId],
      ['smtp.session', undefined],
    ]);
    trace.disable();
    const second = register();
    new Traced('after', SpanKind.INTERNAL, null).end();
    expect(second.getFinishedSpans().map((s) => s.name)).toEqual(['after']);
    expect(first.getFinishedSpans()).toHaveLength(2);
  });
});
