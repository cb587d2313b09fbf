/**
 * The server of bench/floods.ts, in a process of its own so its memory is its own: Sirocco with a
 * buffered handler (SMTP, LMTP, with AUTH and a trusted proxy) and POP3 over a Maildir, or
 * nodemailer's smtp-server with the same buffered handler. Answers `{ rss }` (peak RSS, bytes)
 * on request, after a garbage collection.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SMTPServer as ReferenceServer } from 'smtp-server';
import { Application, RequestHandler, SMTPServer, type AuthCredentials } from '../lib/index.js';
import { MaildirStore, Pop3Server } from '../lib/entry/pop3.js';

const kind = process.argv[2];
const silent = pino({ level: 'silent' });
const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);
let ports: Record<string, number>;

if (kind === 'sirocco') {
  class Keep extends RequestHandler {
    override data(): void {
      void this.request.body.length;
    }
  }
  const settings = {
    hostname: 'bench.test',
    logger: silent,
    maxMessageSize: 10 * 1024 * 1024,
    limitExempt: [],
    maxConnectionsPerIp: 0,
    connectionRatePerIp: 0,
    authFailuresPerIp: 0,
    allowInsecureAuth: true,
    authenticate: (): boolean => false,
  };
  const listen = async (extra: Record<string, unknown>): Promise<number> => {
    const server = new SMTPServer(new Application(Keep, { ...settings, ...extra }));
    await server.listen(0, '127.0.0.1');
    const address = server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  };
  const root = mkdtempSync(join(tmpdir(), 'sirocco-flood-'));
  for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(root, sub));
  writeFileSync(join(root, 'new', '1000.M1P1Q1.bench'), `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(20_000));
  const pop = new Pop3Server({
    store: new MaildirStore(root),
    authenticate: (c: AuthCredentials) => c.mechanism === 'PLAIN' && c.password === 'pw',
    allowInsecureAuth: true,
    logger: silent,
    limitExempt: [],
    maxConnectionsPerIp: 0,
  });
  await pop.listen(0, '127.0.0.1');
  ports = {
    smtp: await listen({}),
    lmtp: await listen({ lmtp: true }),
    proxy: await listen({ proxyFrom: ['127.0.0.1'] }),
    pop3: pop.address()?.port ?? 0,
  };
} else {
  const server = new ReferenceServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    size: 10 * 1024 * 1024,
    onAuth: (_auth, _session, done) => done(new Error('no')),
    onData(stream, _session, done) {
      const parts: Buffer[] = [];
      stream.on('data', (p: Buffer) => parts.push(p));
      stream.on('end', () => {
        void Buffer.concat(parts).length;
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  ports = { smtp: typeof address === 'object' && address !== null ? address.port : 0 };
}

process.on('message', (m: unknown) => {
  if ((m as { ask?: string }).ask === 'rss') {
    gc();
    process.send?.({ rss: process.memoryUsage().rss, peak: process.resourceUsage().maxRSS * 1024 });
  }
});
process.send?.({ ports });
