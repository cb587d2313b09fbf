/** The ready handlers over real sockets. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Application,
  Debugging,
  Maildir,
  RequestHandler,
  Sink,
  SMTPError,
  SMTPServer,
  type HandlerClass,
  type SettingsInput,
} from '../../lib/index.js';
import { Relay } from '../../lib/entry/outbound.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, recordingHandler, silent, startServer, until, type Received } from '../helpers/server.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-handlers-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await closeServers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function send(port: number | string, from: string, to: string[], body: string, ehlo = 'EHLO client.test'): Promise<string> {
  const c = await RawClient.greeted(port);
  await c.command(ehlo);
  await c.command(`MAIL FROM:<${from}>`);
  for (const rcpt of to) await c.command(`RCPT TO:<${rcpt}>`);
  await c.command('DATA');
  const reply = await c.command(`${body}\r\n.`);
  c.close();
  return reply;
}

describe('Sink', () => {
  it('accepts and keeps nothing', async () => {
    const { port } = await startServer(Sink);
    expect(await send(port, 'a@b.test', ['c@d.test'], 'x')).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });
});

describe('Debugging', () => {
  it('prints the envelope, then the body with "> " before each line, to the chosen stream', async () => {
    const stream = new PassThrough();
    let printed = '';
    stream.on('data', (d: Buffer) => (printed += d.toString()));
    const { port } = await startServer(Debugging, { debugStream: stream });
    expect(await send(port, 'a@b.test', ['c@d.test', 'e@f.test'], 'Subject: hi\r\n\r\nline one\r\n..dotted')).toMatch(/^250 /);
    expect(printed.replace(/[0-9A-Z]{12}/g, 'ID').replace(/:\d+\n/, ':PORT\n')).toBe(
      [
        '---------- MESSAGE ID FOLLOWS ----------',
        'Peer: 127.0.0.1:PORT',
        'HELO: client.test (ESMTP)',
        'MAIL FROM: <a@b.test>',
        'RCPT TO: <c@d.test>',
        'RCPT TO: <e@f.test>',
        '',
        '> Subject: hi',
        '> ',
        '> line one',
        '> .dotted',
        '---------- END MESSAGE ID ----------',
        '',
      ].join('\n'),
    );
  });

  it('names a client on a Unix socket by the socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-debugging-'));
    dirs.push(dir);
    const path = join(dir, 'smtp.sock');
    const stream = new PassThrough();
    let printed = '';
    stream.on('data', (d: Buffer) => (printed += d.toString()));
    const server = await new Application(Debugging, { hostname: 'mx.test', logger: silent, debugStream: stream }).listen(path);
    expect(await send(path, 'a@b.test', ['c@d.test'], 'x')).toMatch(/^250 /);
    await server.close();
    expect(printed.split('\n')[1]).toBe(`Peer: unix:${path}`);
  });
});

describe('Maildir', () => {
  it('stores each message in new/ with Return-Path and Received', async () => {
    const dir = tempDir();
    const { port } = await startServer(Maildir, { maildir: dir });
    const reply = await send(port, 'a@b.test', ['c@d.test'], 'Subject: stored\r\n\r\nbody');
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\r\n$/);
    const id = /queued as ([0-9A-Z]{12})/.exec(reply)?.[1] ?? '';
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(readdirSync(join(dir, 'cur'))).toEqual([]);
    const files = readdirSync(join(dir, 'new'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^\\d+\\.M\\d+P${process.pid}Q\\d+\\.`));
    const content = readFileSync(join(dir, 'new', files[0] ?? '')).toString();
    expect(content).toMatch(
      new RegExp(
        `^Return-Path: <a@b\\.test>\\r\\nReceived: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby mx\\.test \\(Sirocco\\) with ESMTP id ${id}\\r\\n\\tfor <c@d\\.test>;\\r\\n\\t\\w{3}, \\d{1,2} \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000\\r\\nSubject: stored\\r\\n\\r\\nbody\\r\\n$`,
      ),
    );
  });

  it('stores the body untouched without trace headers, one file per message', async () => {
    const dir = tempDir();
    const { port } = await startServer(Maildir, { maildir: dir, maildirTraceHeaders: false });
    await send(port, 'a@b.test', ['c@d.test'], 'one');
    await send(port, 'a@b.test', ['c@d.test', 'e@f.test'], 'two', 'HELO client.test');
    const contents = readdirSync(join(dir, 'new'))
      .map((f) => readFileSync(join(dir, 'new', f)).toString())
      .sort();
    expect(contents).toEqual(['one\r\n', 'two\r\n']);
  });

  it('writes a large message byte for byte while it arrives, dot-stuffing removed', async () => {
    const dir = tempDir();
    const { port } = await startServer(Maildir, { maildir: dir, maildirTraceHeaders: false, maxMessageSize: 64 * 1024 * 1024 });
    const lines = Array.from({ length: 60_000 }, (_, i) => `${i % 5 === 0 ? '.' : ''}${'0123456789'.repeat((i % 30) + 1)} ${i}\r\n`);
    const expected = lines.join('');
    const client = await RawClient.inData(port);
    const wire = Buffer.from(lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).join(''));
    for (let offset = 0; offset < wire.length; offset += 1 << 20) client.write(wire.subarray(offset, offset + (1 << 20)));
    expect(await client.command('.')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    client.close();
    const [file] = readdirSync(join(dir, 'new'));
    expect(expected.length).toBeGreaterThan(8 * 1024 * 1024);
    expect(readFileSync(join(dir, 'new', file ?? '')).equals(Buffer.from(expected))).toBe(true);
  });

  it('answers 451, never 250, when the write fails', async () => {
    const dir = tempDir();
    const notADirectory = join(dir, 'file');
    writeFileSync(notADirectory, 'x');
    const { port } = await startServer(Maildir, { maildir: notADirectory });
    expect(await send(port, 'a@b.test', ['c@d.test'], 'x')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
  });

  it('refuses to start without a maildir setting', async () => {
    await expect(startServer(Maildir, {})).rejects.toThrow(
      'Invalid settings: maildir: maildir should not be empty, maildir must be a string',
    );
  });
});

describe('Relay', () => {
  function refusing(code: number, enhanced: [4 | 5, number, number], text: string): HandlerClass {
    return class Refusing extends RequestHandler {
      override data(): void {
        throw new SMTPError(code, enhanced, text);
      }
    };
  }

  async function relayTo(port: number): Promise<number> {
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: port, relayTLS: { rejectUnauthorized: false } });
    return relay.port;
  }

  it('forwards envelope and body to the smarthost', async () => {
    const received: Received[] = [];
    const smarthost = await startServer(recordingHandler(received));
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: smarthost.port });
    expect(await send(relay.port, 'a@b.test', ['c@d.test', 'e@f.test'], 'Subject: via relay\r\n\r\n..dot line')).toMatch(
      /^250 2\.0\.0 Ok: relayed as [0-9A-Z]{12}\r\n$/,
    );
    expect(received.map((r) => ({ ...r, body: r.body.toString().replace(/^Received: [^]*?\r\n(?![ \t])/, '') }))).toEqual([
      { mailFrom: 'a@b.test', rcptTos: ['c@d.test', 'e@f.test'], body: 'Subject: via relay\r\n\r\n.dot line\r\n' },
    ]);
    expect(received[0]?.body.toString()).toMatch(
      /^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Sirocco\) with ESMTP id /,
    );
  });

  it('keeps a permanent refusal 5xx and a temporary one 4xx', async () => {
    const permanent = await startServer(refusing(554, [5, 7, 1], 'spam refused'));
    const temporary = await startServer(refusing(451, [4, 3, 0], 'try later'));
    expect(await send(await relayTo(permanent.port), 'a@b.test', ['c@d.test'], 'x')).toBe('554 5.7.1 spam refused\r\n');
    expect(await send(await relayTo(temporary.port), 'a@b.test', ['c@d.test'], 'x')).toBe('451 4.3.0 try later\r\n');
  });

  it('answers 451 4.4.1 when the smarthost cannot be reached', async () => {
    const gone = await startServer();
    const port = gone.port;
    await closeServers();
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: port });
    expect(await send(relay.port, 'a@b.test', ['c@d.test'], 'x')).toBe('451 4.4.1 Relay host unreachable, try again later\r\n');
  });

  /** A smarthost that records what it accepts and refuses every recipient named no@…. */
  function picky(received: Received[]): HandlerClass {
    return class Picky extends RequestHandler {
      override rcpt(address: string): void {
        if (address.startsWith('no@')) throw new SMTPError(550, [5, 1, 1], 'no such user here');
      }
      override data(): void {
        received.push({ mailFrom: this.request.mailFrom, rcptTos: [...this.request.rcptTos], body: this.request.body });
      }
    };
  }

  it('bounces to the sender the recipients the smarthost refused after the client was told 250', async () => {
    const received: Received[] = [];
    const smarthost = await startServer(picky(received));
    const relay = await startServer(Relay, { hostname: 'relay.test', relayHost: '127.0.0.1', relayPort: smarthost.port });
    expect(await send(relay.port, 'a@b.test', ['c@d.test', 'no@d.test'], 'Subject: half\r\n\r\nbody')).toMatch(
      /^250 2\.0\.0 Ok: relayed as /,
    );
    expect(received.map((r) => [r.mailFrom, r.rcptTos])).toEqual([
      ['a@b.test', ['c@d.test']],
      ['', ['a@b.test']],
    ]);
    const bounce = received[1]?.body.toString() ?? '';
    expect(bounce).toContain('Content-Type: multipart/report; report-type=delivery-status;');
    expect(bounce).toContain(
      'Final-Recipient: rfc822; no@d.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; 127.0.0.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user here\r\n',
    );
    expect(bounce).toMatch(/Content-Type: text\/rfc822-headers\r\n\r\nReceived: [^]*?\r\nSubject: half\r\n/);
  });

  /** Sends through a relay to a picky smarthost; the reply, and the envelopes the smarthost took. */
  async function relayToPicky(from: string, settings: SettingsInput = {}): Promise<[string, [string, string[]][]]> {
    const received: Received[] = [];
    const smarthost = await startServer(picky(received));
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: smarthost.port, ...settings });
    const reply = await send(relay.port, from, ['c@d.test', 'no@d.test'], 'x');
    return [reply, received.map((r) => [r.mailFrom, r.rcptTos])];
  }

  it('still answers 250 when the bounce itself is refused (the message went to the others)', async () => {
    const [reply, envelopes] = await relayToPicky('no@b.test');
    expect(reply).toMatch(/^250 2\.0\.0 Ok: relayed as /);
    expect(envelopes).toEqual([['no@b.test', ['c@d.test']]]);
  });

  it('sends no bounce when relayBounces is off', async () => {
    const [reply, envelopes] = await relayToPicky('a@b.test', { relayBounces: false });
    expect(reply).toMatch(/^250 /);
    expect(envelopes).toEqual([['a@b.test', ['c@d.test']]]);
  });

  it('sends no bounce for a message from the null sender', async () => {
    const [reply, envelopes] = await relayToPicky('');
    expect(reply).toMatch(/^250 /);
    expect(envelopes).toEqual([['', ['c@d.test']]]);
  });

  it('relays a bounce: the null sender stays null', async () => {
    const received: Received[] = [];
    const smarthost = await startServer(recordingHandler(received));
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: smarthost.port });
    expect(await send(relay.port, '', ['c@d.test'], 'bounce')).toMatch(/^250 /);
    expect(received[0]?.mailFrom).toBe('');
  });
});

describe('services owned by the application', () => {
  it("closes Relay's smarthost connections when the relaying server closes, with no call of the user's", async () => {
    const received: Received[] = [];
    const smarthost = await startServer(recordingHandler(received));
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: smarthost.port });
    expect(await send(relay.port, 'a@b.test', ['c@d.test'], 'Subject: pooled\r\n\r\nx')).toMatch(/^250 /);
    // The pool keeps its connection to the smarthost open between messages...
    expect(smarthost.server.connections).toBe(1);
    await relay.server.close();
    // ...until the application's last server closes.
    await until(() => smarthost.server.connections === 0, 3000);
    expect(relay.app.services.holders).toBe(0);
  });

  it('keeps the services while a second server of the same application still serves', async () => {
    const received: Received[] = [];
    const smarthost = await startServer(recordingHandler(received));
    const relay = await startServer(Relay, { relayHost: '127.0.0.1', relayPort: smarthost.port });
    const second = new SMTPServer(relay.app);
    await second.listen(0, '127.0.0.1');
    const address = second.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await relay.server.close();
    expect(await send(port, 'a@b.test', ['c@d.test'], 'Subject: second\r\n\r\nx')).toMatch(/^250 /);
    expect(smarthost.server.connections).toBe(1);
    await second.close();
    await until(() => smarthost.server.connections === 0, 3000);
    expect(received.map((r) => r.rcptTos)).toEqual([['c@d.test']]);
  });
});
