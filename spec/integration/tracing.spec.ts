/**
 * OpenTelemetry spans, recorded by the SDK's in-memory exporter: a session, its AUTH exchange and
 * its transaction (with the handler's own spans inside), a failing hook, and sending (connect and
 * delivery attempt) under a span of the caller's. Real clients: Python's smtplib, raw sockets,
 * `sendDirect` to servers on loopback through a DNS server on loopback.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError, type AuthCredentials } from '../../lib/index.js';
import { Relay, sendDirect } from '../../lib/entry/outbound.js';
import { startDns } from '../helpers/dns.js';
import { startFleet } from '../helpers/outbound.js';
import { runPython } from '../helpers/python.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, freePort, startServer, until } from '../helpers/server.js';

const exporter = new InMemorySpanExporter();
const manager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(manager.enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});
afterAll(() => {
  trace.disable();
  context.disable();
});
beforeEach(() => exporter.reset());
afterEach(closeServers);

const test = trace.getTracer('test');
const anyNumber = expect.any(Number) as unknown as number;
const anyString = expect.any(String) as unknown as string;
const matching = (pattern: RegExp): string => {
  const matcher: unknown = expect.stringMatching(pattern);
  return matcher as string;
};

function finished(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name);
}

function one(name: string): ReadableSpan {
  const spans = finished(name);
  if (spans.length !== 1)
    throw new Error(
      `${spans.length} spans named ${name}: ${exporter
        .getFinishedSpans()
        .map((s) => s.name)
        .join(', ')}`,
    );
  return spans[0] as ReadableSpan;
}

/** Whether `child` is a direct child of `parent`. */
function childOf(child: ReadableSpan, parent: ReadableSpan): boolean {
  return child.parentSpanContext?.spanId === parent.spanContext().spanId && child.spanContext().traceId === parent.spanContext().traceId;
}

class Storing extends RequestHandler {
  override async data(): Promise<void> {
    await test.startActiveSpan('store the message', async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      span.end();
    });
  }
}

const authenticate = (credentials: AuthCredentials): boolean => {
  test.startSpan('look the user up').end();
  return credentials.mechanism === 'PLAIN' && credentials.username === 'alice' && credentials.password === 'wonderland';
};

describe('spans of a session', () => {
  it('a session holds its AUTH exchange and its transaction; the handler and authenticate run inside them', async () => {
    const { port } = await startServer(Storing, { authenticate, authMechanisms: ['PLAIN'], allowInsecureAuth: true });
    const out = await runPython(
      `
import os, smtplib
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), local_hostname='client.test')
s.login('alice', 'wonderland')
s.mail('a@sender.test')
s.rcpt('b@x.test')
s.rcpt('c@x.test')
code, text = s.data(b'Subject: traced\\r\\n\\r\\nhello\\r\\n')
print(code, text.decode())
s.quit()
`,
      port,
    );
    const queueId = /queued as (\S+)/.exec(out)?.[1];
    expect(out).toMatch(/^250 2\.0\.0 Ok: queued as \S+\n$/);
    await until(() => finished('smtp.session').length === 1);

    const session = one('smtp.session');
    expect(session.kind).toBe(SpanKind.SERVER);
    expect(session.parentSpanContext).toBeUndefined();
    expect(session.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(session.attributes).toEqual({
      'sirocco.connection.id': anyString,
      'network.protocol.name': 'smtp',
      'network.transport': 'tcp',
      'server.address': '127.0.0.1',
      'server.port': port,
      'network.peer.address': '127.0.0.1',
      'network.peer.port': anyNumber,
      'client.address': '127.0.0.1',
      'client.port': session.attributes['network.peer.port'],
      'sirocco.helo': 'client.test',
      'sirocco.authenticated': true,
    });

    const auth = one('smtp.auth');
    expect(childOf(auth, session)).toBe(true);
    expect(auth.kind).toBe(SpanKind.INTERNAL);
    expect(auth.attributes).toEqual({
      'sirocco.sasl.mechanism': 'PLAIN',
      'sirocco.reply.code': 235,
      'sirocco.reply.status': '2.7.0',
      'sirocco.reply.name': 'authSuccess',
      'sirocco.outcome': 'success',
    });
    expect(childOf(one('look the user up'), auth)).toBe(true);

    const transaction = one('smtp.transaction');
    expect(childOf(transaction, session)).toBe(true);
    expect(transaction.attributes).toEqual({
      'sirocco.queue_id': queueId,
      'sirocco.recipients': 2,
      'sirocco.message.size': 'Subject: traced\r\n\r\nhello\r\n'.length,
      'sirocco.reply.code': 250,
      'sirocco.reply.status': '2.0.0',
      'sirocco.reply.name': 'queued',
      'sirocco.outcome': 'accepted',
    });
    expect(transaction.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(childOf(one('store the message'), transaction)).toBe(true);
  });

  it('a hook that throws marks the transaction an error; a reset transaction ends aborted', async () => {
    class Broken extends RequestHandler {
      override rcpt(): void {
        throw new TypeError('the address book is gone');
      }
    }
    const { port } = await startServer(Broken);
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<a@sender.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<b@x.test>')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await client.command('RSET')).toBe('250 2.0.0 Ok\r\n');
    await until(() => finished('smtp.transaction').length === 1);
    const transaction = one('smtp.transaction');
    expect(transaction.status).toEqual({ code: SpanStatusCode.ERROR, message: 'the address book is gone' });
    expect(transaction.attributes).toEqual({
      'error.type': 'TypeError',
      'sirocco.queue_id': anyString,
      'sirocco.recipients': 0,
      'sirocco.outcome': 'aborted',
    });
    expect(transaction.events.map((e) => [e.name, e.attributes?.['exception.type'], e.attributes?.['exception.message']])).toEqual([
      ['exception', 'TypeError', 'the address book is gone'],
    ]);
    client.close();
  });

  it('a refusal is a reply, not an error: the MAIL the handler refused, a failed AUTH', async () => {
    class Picky extends RequestHandler {
      override prepare(): void {
        throw new SMTPError(550, [5, 7, 1], 'not from you');
      }
    }
    const { port } = await startServer(Picky, { authenticate, authMechanisms: ['PLAIN'], allowInsecureAuth: true });
    const client = await RawClient.ehlo(port);
    expect(await client.command(`AUTH PLAIN ${Buffer.from('\0alice\0guess').toString('base64')}`)).toBe(
      '535 5.7.8 Authentication credentials invalid\r\n',
    );
    expect(await client.command('MAIL FROM:<a@sender.test>')).toBe('550 5.7.1 not from you\r\n');
    expect(await client.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    await until(() => finished('smtp.session').length === 1);
    expect(one('smtp.auth').attributes).toEqual({
      'sirocco.sasl.mechanism': 'PLAIN',
      'sirocco.reply.code': 535,
      'sirocco.reply.status': '5.7.8',
      'sirocco.reply.name': 'authInvalid',
      'sirocco.outcome': 'failure',
    });
    const transaction = one('smtp.transaction');
    expect(transaction.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(transaction.attributes).toEqual({
      'sirocco.queue_id': anyString,
      'sirocco.recipients': 0,
      'sirocco.reply.code': 550,
      'sirocco.reply.status': '5.7.1',
      'sirocco.outcome': 'refused',
    });
    expect(one('smtp.session').attributes['sirocco.authenticated']).toBeUndefined();
  });
});

/** How a delivery attempt ends when the exchanger took one recipient of two and refused the other. */
const ONE_OF_TWO_ACCEPTED = {
  'sirocco.recipients.accepted': 1,
  'sirocco.recipients.deferred': 0,
  'sirocco.recipients.refused': 1,
  'sirocco.reply.code': 250,
  'sirocco.reply.status': '2.0.0',
  'sirocco.reply': matching(/^250 2\.0\.0 Ok: queued as \S+$/),
};

describe('spans of sending', () => {
  it('connect and delivery attempt, children of the caller’s span, with the exchanger and the reply', async () => {
    const fleet = await startFleet('127.0.0.1', { refuseRcpt: { 'no@d.test': new SMTPError(550, [5, 1, 1], 'no such user') } });
    const dns = await startDns({ 'd.test': { mx: [[10, 'mx.d.test']] }, 'mx.d.test': { a: ['127.0.0.1'] } });
    try {
      const report = await test.startActiveSpan('job', async (span) => {
        const sent = await sendDirect({
          from: 'a@sender.test',
          to: ['yes@d.test', 'no@d.test'],
          message: 'Subject: out\r\n\r\nhello\r\n',
          hostname: 'me.test',
          port: fleet.port,
          dnsServers: [dns.server],
        });
        span.end();
        return sent;
      });
      expect(report.recipients.map((r) => r.code)).toEqual([250, 550]);
      const job = one('job');
      const connect = one('smtp.connect');
      expect(childOf(connect, job)).toBe(true);
      expect(connect.kind).toBe(SpanKind.CLIENT);
      expect(connect.attributes).toEqual({
        'server.address': 'mx.d.test',
        'server.port': fleet.port,
        'network.peer.address': '127.0.0.1',
        'network.transport': 'tcp',
        'network.protocol.name': 'smtp',
        'sirocco.tls': false,
      });
      const deliver = one('smtp.deliver');
      expect(childOf(deliver, job)).toBe(true);
      expect(deliver.kind).toBe(SpanKind.CLIENT);
      expect(deliver.status).toEqual({ code: SpanStatusCode.UNSET });
      expect(deliver.attributes).toEqual({
        'server.address': 'mx.d.test',
        'server.port': fleet.port,
        'network.peer.address': '127.0.0.1',
        'network.transport': 'tcp',
        'network.protocol.name': 'smtp',
        'sirocco.recipients': 2,
        ...ONE_OF_TWO_ACCEPTED,
      });
    } finally {
      await dns.close();
      await fleet.close();
    }
  });

  it('Relay: each transaction with the smarthost is a delivery attempt inside the client’s transaction', async () => {
    const fleet = await startFleet('127.0.0.1', { refuseRcpt: { 'no@d.test': new SMTPError(550, [5, 1, 1], 'no such user') } });
    try {
      const { port } = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: fleet.port, relayBounces: false });
      const client = await RawClient.ehlo(port);
      await client.command('MAIL FROM:<a@sender.test>');
      expect(await client.command('RCPT TO:<yes@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
      expect(await client.command('RCPT TO:<no@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
      await client.command('DATA');
      const relayed = await client.command('Subject: relayed\r\n\r\nhello\r\n.');
      expect(relayed).toMatch(/^250 2\.0\.0 Ok: relayed as \S+\r\n$/);
      // The smarthost is in this process too: its own transaction is a root span's.
      await until(() => finished('smtp.transaction').length === 2);
      const id = /relayed as (\S+)/.exec(relayed)?.[1];
      const transaction = finished('smtp.transaction').find((t) => t.attributes['sirocco.queue_id'] === id);
      if (transaction === undefined) throw new Error('no span for the relayed transaction');
      const deliver = one('smtp.deliver');
      expect(childOf(deliver, transaction)).toBe(true);
      expect(deliver.attributes).toEqual({
        'server.address': '127.0.0.1',
        'server.port': fleet.port,
        'network.transport': 'tcp',
        'network.protocol.name': 'smtp',
        'sirocco.recipients': 2,
        'sirocco.queue_id': transaction.attributes['sirocco.queue_id'],
        ...ONE_OF_TWO_ACCEPTED,
      });
      client.close();
    } finally {
      await fleet.close();
    }
  });

  it('an exchanger that cannot be reached is an event, and a connect span with no exchanger is an error', async () => {
    const dns = await startDns({ 'e.test': { mx: [[10, 'mx.e.test']] }, 'mx.e.test': { a: ['127.0.0.1'] } });
    try {
      const port = await freePort();
      const report = await sendDirect({
        from: 'a@sender.test',
        to: 'x@e.test',
        message: 'hello\r\n',
        hostname: 'me.test',
        port,
        dnsServers: [dns.server],
      });
      expect(report.recipients.map((r) => r.code)).toEqual([451]);
      const connect = one('smtp.connect');
      expect(connect.parentSpanContext).toBeUndefined();
      expect(connect.status.code).toBe(SpanStatusCode.ERROR);
      expect(connect.attributes).toEqual({
        'sirocco.reply.code': 451,
        'sirocco.reply.status': '4.4.1',
        'sirocco.reply': matching(/^mx\.e\.test \[127\.0\.0\.1\]: .*ECONNREFUSED/),
      });
      expect(connect.events.map((e) => [e.name, e.attributes?.['server.address'], e.attributes?.['network.peer.address']])).toEqual([
        ['exchanger not usable', 'mx.e.test', '127.0.0.1'],
      ]);
      expect(finished('smtp.deliver')).toEqual([]);
    } finally {
      await dns.close();
    }
  });
});
