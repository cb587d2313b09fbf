/**
 * Spans without an SDK (no API module loaded, nothing built, nothing propagated) and with one
 * registered late or replaced: the spans follow the global provider as it is now.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SpanKinds, Traced } from '../../lib/telemetry/traced.js';
import { ROOT } from '../helpers/processes.js';

type Api = typeof import('@opentelemetry/api');
type Sdk = typeof import('@opentelemetry/sdk-trace-base');

// Loaded by the tests, after the first ones have run without them.
let api: Api | undefined;
afterAll(() => api?.trace.disable());

async function register(): Promise<InstanceType<Sdk['InMemorySpanExporter']>> {
  api ??= await import('@opentelemetry/api');
  const sdk = await import('@opentelemetry/sdk-trace-base');
  const exporter = new sdk.InMemorySpanExporter();
  api.trace.setGlobalTracerProvider(new sdk.BasicTracerProvider({ spanProcessors: [new sdk.SimpleSpanProcessor(exporter)] }));
  return exporter;
}

describe('Traced', () => {
  it('importing the server does not load @opentelemetry/api, and a session without an SDK does not either', async () => {
    const script = `
      import { createRequire } from 'node:module';
      const { startServer } = await import('./spec/helpers/server.ts');
      const { RawClient } = await import('./spec/helpers/raw-client.ts');
      const running = await startServer();
      const client = await RawClient.ehlo(running.port);
      await client.command('MAIL FROM:<a@b.test>');
      client.close();
      await running.server.close();
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((m) => m.includes('@opentelemetry'));
      console.log(JSON.stringify(loaded));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe('[]');
  });

  it('without an SDK: not recording, no attributes built, the hook runs as it is', () => {
    const traced = Traced.start('smtp.session', SpanKinds.SERVER, null);
    expect(traced.recording).toBe(false);
    expect(traced.spanId).toBeUndefined();
    let built = 0;
    traced.annotate(() => {
      built++;
      return { a: 1 };
    });
    traced.event('e', () => {
      built++;
      return {};
    });
    expect(built).toBe(0);
    expect(Traced.start('smtp.transaction', SpanKinds.INTERNAL, traced).run(() => 42)).toBe(42);
    traced.failed(new Error('x'));
    traced.end();
    traced.end();
    expect(traced.ended).toBe(true);
  });

  it('an SDK registered after the first spans gets the next ones (parents given without a context manager); a replaced one is followed', async () => {
    Traced.start('before', SpanKinds.INTERNAL, null).end();
    const first = await register();
    const session = Traced.start('smtp.session', SpanKinds.SERVER, null);
    const child = Traced.start('smtp.transaction', SpanKinds.INTERNAL, session);
    expect(child.recording).toBe(true);
    child.end();
    session.end();
    expect(first.getFinishedSpans().map((s) => [s.name, s.parentSpanContext?.spanId])).toEqual([
      ['smtp.transaction', session.spanId],
      ['smtp.session', undefined],
    ]);
    api?.trace.disable();
    Traced.start('while disabled', SpanKinds.INTERNAL, null).end();
    const second = await register();
    Traced.start('after', SpanKinds.INTERNAL, null).end();
    expect(second.getFinishedSpans().map((s) => s.name)).toEqual(['after']);
    expect(first.getFinishedSpans()).toHaveLength(2);
  });
});
