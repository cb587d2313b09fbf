/** Every example runs as a user would run it: its own process, real clients. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Transporter } from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { plainTransport, tlsTransport } from '../helpers/mailer.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { ROOT, startTsx, stopAll, terminate, type Started } from '../helpers/processes.js';
import { runPython } from '../helpers/python.js';
import { startDns } from '../helpers/dns.js';
import { tempQueue } from '../helpers/outbound.js';
import { closeServers, recordingHandler, startServer, until, type Received } from '../helpers/server.js';

let certs: TestCertificates;

beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.cleanup());
afterEach(stopAll);

interface Running extends Started {
  readonly port: number;
  readonly output: () => string;
}

async function runExample(name: string, env: Record<string, string> = {}): Promise<Running> {
  return runTsx([fileURLToPath(new URL(`../../examples/${name}`, import.meta.url))], env);
}

/** Starts a server command and waits until it says where it listens. */
async function runTsx(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const started = startTsx(args, { PORT: '0', ...env });
  const output = (): string => started.stdout() + started.stderr();
  await until(() => / on 127\.0\.0\.1:\d+/.test(output()) || started.child.exitCode !== null, 15_000);
  const port = Number(/ on 127\.0\.0\.1:(\d+)/.exec(output())?.[1] ?? 0);
  return { ...started, port, output };
}

/** Python's smtplib sends to one handled and one foreign recipient; prints the refusals. */
const SEND_TO_EXAMPLE_COM = `
import os, smtplib
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), timeout=10)
print(s.sendmail('me@sender.test', ['you@example.com', 'them@elsewhere.test'], 'Subject: hello\\r\\n\\r\\nHi there\\r\\n'))
s.quit()
`;

describe('npm start', () => {
  it('runs the sirocco command with the example.com handler: prints mail for example.com, refuses the rest', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
    const [tool, ...args] = pkg.scripts.start.split(' ');
    expect(tool).toBe('tsx');
    expect(args).toContain('127.0.0.1:2525');
    // The same command on a free port: a later --listen wins.
    const started = await runTsx([...args, '--listen', '127.0.0.1:0']);
    const { port, output } = started;
    const result = await runPython(SEND_TO_EXAMPLE_COM, port);
    expect(result.trim()).toBe("{'them@elsewhere.test': (550, b'5.7.1 not relaying to that domain')}");
    await until(() => output().includes('end of message'));
    expect(output()).toContain('From: <me@sender.test>\nTo: <you@example.com>\n');
    expect(await terminate(started)).toBe(0);
  });
});

describe('examples/example-com.ts', () => {
  it('accepts mail for example.com, prints it, refuses other domains, stops on SIGTERM', async () => {
    const started = await runExample('example-com.ts');
    const { port, output } = started;
    const result = await runPython(SEND_TO_EXAMPLE_COM, port);
    expect(result.trim()).toBe("{'them@elsewhere.test': (550, b'5.7.1 not relaying to that domain')}");
    await until(() => output().includes('end of message'));
    expect(output()).toMatch(
      /---------- message [0-9A-Z]{12} ----------\nFrom: <me@sender\.test>\nTo: <you@example\.com>\nPeer: 127\.0\.0\.1 \(\S+\)\n\nSubject: hello\n\nHi there\n---------- end of message [0-9A-Z]{12} ----------\n/,
    );
    expect(await terminate(started)).toBe(0);
  });
});

describe('examples/submission.ts', () => {
  it('takes mail only over TLS, only after AUTH, only from the user', async () => {
    const started = await runExample('submission.ts', { TLS_KEY: join(certs.dir, 'server.key'), TLS_CERT: join(certs.dir, 'server.crt') });
    const { port, output } = started;
    const transport = (user: string, pass: string): Transporter => tlsTransport(port, certs.ca, 'starttls', { auth: { user, pass } });
    const good = transport('alice', 'wonderland');
    expect((await good.sendMail({ from: 'alice@example.com', to: 'bob@example.net', text: 'hi' })).response).toMatch(/^250 /);
    await expect(good.sendMail({ from: 'mallory@example.com', to: 'bob@example.net', text: 'hi' })).rejects.toMatchObject({
      response: '553 5.7.1 sender must be alice@…',
    });
    good.close();
    const bad = transport('alice', 'wrong');
    await expect(bad.sendMail({ from: 'alice@example.com', to: 'bob@example.net', text: 'hi' })).rejects.toMatchObject({
      responseCode: 535,
    });
    bad.close();
    await until(() => output().includes('accepted'));
    expect(output()).toMatch(/accepted \d+ bytes from alice <alice@example\.com> for bob@example\.net/);
    expect(await terminate(started)).toBe(0);
  });

  it('says what is missing without a key and certificate', async () => {
    const started = await runExample('submission.ts', { TLS_KEY: '', TLS_CERT: '' });
    expect(await started.exited).toBe(2);
    expect(started.output()).toContain('submission: set TLS_KEY and TLS_CERT');
  });
});

describe('examples/mta.ts', () => {
  it("queues its user's mail and delivers it to the recipient's MX; refuses anyone else", async () => {
    const received: Received[] = [];
    const exchanger = await startServer(recordingHandler(received), {}, '127.0.0.1');
    const dns = await startDns({ 'example.net': { mx: [[10, 'mx.example.net']] }, 'mx.example.net': { a: ['127.0.0.1'] } });
    const queue = tempQueue();
    try {
      const started = await runExample('mta.ts', {
        TLS_KEY: join(certs.dir, 'server.key'),
        TLS_CERT: join(certs.dir, 'server.crt'),
        QUEUE_DIR: queue.dir,
        DNS_SERVERS: dns.server,
        DELIVERY_PORT: String(exchanger.port),
      });
      const alice = tlsTransport(started.port, certs.ca, 'starttls', { auth: { user: 'alice', pass: 'wonderland' } });
      expect((await alice.sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'via MX', text: 'hi' })).response).toMatch(
        /^250 2\.0\.0 Ok: queued as [a-z0-9]+$/,
      );
      alice.close();
      const anonymous = tlsTransport(started.port, certs.ca, 'starttls');
      await expect(anonymous.sendMail({ from: 'alice@example.com', to: 'bob@example.net', text: 'hi' })).rejects.toMatchObject({
        response: '530 5.7.0 Authentication required',
      });
      anonymous.close();
      await until(() => received.length === 1, 10_000);
      expect(received[0]).toMatchObject({ mailFrom: 'alice@example.com', rcptTos: ['bob@example.net'] });
      expect(received[0]?.body.toString()).toContain('Subject: via MX');
      expect(await terminate(started)).toBe(0);
    } finally {
      await dns.close();
      queue.cleanup();
      await closeServers();
    }
  });
});

describe('examples/maildir-server.ts', () => {
  it('stores what it receives in the Maildir', async () => {
    const dir = join(certs.dir, 'mail');
    const started = await runExample('maildir-server.ts', { MAILDIR: dir });
    const { port } = started;
    const transport = plainTransport(port);
    await transport.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'kept', text: 'on disk' });
    transport.close();
    const files = readdirSync(join(dir, 'new'));
    expect(files).toHaveLength(1);
    expect(readFileSync(join(dir, 'new', files[0] ?? ''), 'utf8')).toContain('Subject: kept');
    expect(await terminate(started)).toBe(0);
  });
});

describe('examples/relay-server.ts', () => {
  it('relays for its domains only, to the smarthost', async () => {
    const received: Received[] = [];
    const smarthost = await startServer(recordingHandler(received));
    const started = await runExample('relay-server.ts', {
      SMARTHOST: '127.0.0.1',
      SMARTHOST_PORT: String(smarthost.port),
      RELAY_DOMAINS: 'example.com',
    });
    const { port } = started;
    const transport = plainTransport(port);
    await transport.sendMail({ from: 'a@sender.test', to: 'b@example.com', subject: 'relayed', text: 'x' });
    await expect(transport.sendMail({ from: 'a@sender.test', to: 'b@elsewhere.test', text: 'x' })).rejects.toMatchObject({
      response: '554 5.7.1 Relay access denied',
    });
    transport.close();
    expect(received.map((r) => r.rcptTos)).toEqual([['b@example.com']]);
    expect(await terminate(started)).toBe(0);
    await closeServers();
  });
});

describe('examples/smtps.ts', () => {
  it('speaks TLS from the first byte and requires AUTH', async () => {
    const started = await runExample('smtps.ts', { TLS_KEY: join(certs.dir, 'server.key'), TLS_CERT: join(certs.dir, 'server.crt') });
    const { port } = started;
    const transport = tlsTransport(port, certs.ca, 'implicit', { auth: { user: 'alice', pass: 'wonderland' } });
    expect((await transport.sendMail({ from: 'alice@example.com', to: 'bob@example.net', text: 'hi' })).response).toMatch(/^250 /);
    transport.close();
    const anonymous = tlsTransport(port, certs.ca, 'implicit');
    await expect(anonymous.sendMail({ from: 'alice@example.com', to: 'bob@example.net', text: 'hi' })).rejects.toMatchObject({
      response: '530 5.7.0 Authentication required',
    });
    anonymous.close();
    expect(await terminate(started)).toBe(0);
  });
});

describe('examples/lmtp-maildir.ts', () => {
  it("takes Python's smtplib.LMTP on a Unix socket and answers each recipient", async () => {
    const socket = join(certs.dir, 'lmtp.sock');
    const mail = join(certs.dir, 'lmtp-mail');
    const started = startTsx([fileURLToPath(new URL('../../examples/lmtp-maildir.ts', import.meta.url))], {
      LMTP_SOCKET: socket,
      MAILDIR: mail,
      USERS: 'alice@example.com,bob@example.com',
    });
    await until(() => (started.stdout() + started.stderr()).includes('LMTP into'), 15_000);
    const out = await runPython(
      `
import smtplib, json
lmtp = smtplib.LMTP(${JSON.stringify(socket)})
lmtp.ehlo()
lmtp.mail('a@example.org')
codes = [lmtp.rcpt(r)[0] for r in ['alice@example.com', 'nobody@example.com', 'bob@example.com']]
codes.append(lmtp.data(b'Subject: to the store\\r\\n\\r\\nhi\\r\\n')[0])
codes.append(lmtp.getreply()[0])
lmtp.quit()
print(json.dumps(codes))
`,
      0,
    );
    expect(JSON.parse(out)).toEqual([250, 550, 250, 250, 250]);
    for (const user of ['alice@example.com', 'bob@example.com']) {
      const files = readdirSync(join(mail, user, 'new'));
      expect(readFileSync(join(mail, user, 'new', files[0] ?? ''), 'utf8')).toContain('Subject: to the store');
    }
    expect(await terminate(started)).toBe(0);
  });
});

describe('examples/large-messages.ts', () => {
  it('spools a 20 MiB message to disk while it arrives and answers with its SHA-256', async () => {
    const spool = join(certs.dir, 'spool');
    const started = await runExample('large-messages.ts', { SPOOL: spool });
    const transport = plainTransport(started.port);
    const info = await transport.sendMail({
      from: 'a@example.com',
      to: 'b@example.com',
      subject: 'big',
      text: 'x'.repeat(20 * 1024 * 1024),
    });
    transport.close();
    const [id, digest] = /stored as ([0-9A-Z]{12}), sha256 ([0-9a-f]{64})/.exec(info.response)?.slice(1) ?? [];
    const stored = readFileSync(join(spool, `${id}.eml`));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(digest);
    expect(stored.length).toBeGreaterThan(20 * 1024 * 1024);
    expect(readdirSync(spool).filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(await terminate(started)).toBe(0);
  });
});
