/**
 * POP3 over real sockets: Python's poplib reading back what smtplib sent (into a Maildir, and into
 * a test inbox), STLS, the maildrop lock, and the exact bytes of the errors.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Maildir, RequestHandler, SettingsError, type AuthCredentials } from '../../lib/index.js';
import { MaildirStore, Pop3Server, type Pop3Client as Pop3ClientFacts, type Pop3ServerOptions } from '../../lib/entry/pop3.js';
import { Controller, InboxStore } from '../../lib/entry/testing.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { runPython } from '../helpers/python.js';
import { startTsx, stopAll } from '../helpers/processes.js';
import { closeServers, freePort, silent, startServer, until } from '../helpers/server.js';
import { Pop3Client } from '../helpers/pop3-client.js';

let certs: TestCertificates;
const servers: Pop3Server[] = [];
const cleanups: (() => void | Promise<void>)[] = [];

beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.cleanup());
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await closeServers();
  for (const c of cleanups.splice(0)) await c();
});

const USERS: Record<string, string> = { 'alice@example.com': 'wonderland', 'bob@example.com': 'builder' };
const authenticate = (c: AuthCredentials): boolean => c.mechanism === 'PLAIN' && USERS[c.username] === c.password;

async function pop3(options: Partial<Pop3ServerOptions> & Pick<Pop3ServerOptions, 'store'>): Promise<number> {
  const server = new Pop3Server({ authenticate, hostname: 'pop.test', logger: silent, ...options });
  await server.listen(0, '127.0.0.1');
  servers.push(server);
  return server.address()?.port ?? 0;
}

/** A Maildir with one folder per recipient, served by SMTP and by POP3. */
async function maildirPair(pop3Options: Partial<Pop3ServerOptions> = {}): Promise<{ smtp: number; pop: number; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'sirocco-pop3-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const { port } = await startServer(Maildir, { maildir: root, maildirPerRecipient: true });
  const pop = await pop3({ store: new MaildirStore(root, { perUser: true }), ...pop3Options });
  return { smtp: port, pop, root };
}

describe("Python's poplib reads back what smtplib sent", () => {
  it('over a Maildir, after STLS: list, retr, dele, quit; the deletion happens at QUIT', async () => {
    const { smtp, pop } = await maildirPair({ tls: { key: certs.key, cert: certs.cert } });
    const script = `
import os, poplib, smtplib, ssl
smtp = smtplib.SMTP('127.0.0.1', ${smtp})
smtp.sendmail('carol@example.org', ['alice@example.com'], b'Subject: first\\r\\n\\r\\n.starts with a dot\\r\\nhello\\r\\n')
smtp.sendmail('carol@example.org', ['alice@example.com', 'bob@example.com'], b'Subject: second\\r\\n\\r\\nhi both\\r\\n')
smtp.quit()
context = ssl.create_default_context(cafile=${JSON.stringify(certs.caFile)})
p = poplib.POP3('127.0.0.1', ${pop})
print(p.getwelcome().decode())
print(p.stls(context).decode())
p.user('alice@example.com')
print(p.pass_('wonderland').decode())
print(p.stat())
resp, listing, octets = p.list()
print(resp.decode(), [l.decode() for l in listing])
resp, lines, octets = p.retr(1)
print([l.decode() for l in lines if l.startswith(b'Subject') or l.startswith(b'.') or l == b'hello'])
print(p.dele(1).decode())
print(p.quit().decode())
p = poplib.POP3('127.0.0.1', ${pop})
p.stls(context)
p.user('alice@example.com')
p.pass_('wonderland')
print(p.stat())
resp, lines, octets = p.retr(1)
print([l.decode() for l in lines if l.startswith(b'Subject')])
p.quit()
`;
    const out = (await runPython(script, smtp)).split('\n');
    expect(out.slice(0, 10)).toEqual([
      '+OK pop.test POP3 server ready',
      '+OK Begin TLS negotiation now',
      expect.stringMatching(/^\+OK alice@example\.com has 2 messages \(\d+ octets\)$/),
      expect.stringMatching(/^\(2, \d+\)$/),
      expect.stringMatching(/^\+OK 2 messages \(\d+ octets\) \['1 \d+', '2 \d+'\]$/),
      "['Subject: first', '.starts with a dot', 'hello']",
      '+OK Message 1 deleted',
      '+OK pop.test POP3 server signing off (1 message left)',
      expect.stringMatching(/^\(1, \d+\)$/),
      "['Subject: second']",
    ]);
  });

  it("over a test inbox: the user's own mail, TOP and UIDL, and the inbox forgets what was deleted", async () => {
    const controller = new Controller(RequestHandler, { inbox: true });
    await controller.start();
    cleanups.push(() => controller.stop());
    const pop = await pop3({ store: new InboxStore(controller.inbox), allowInsecureAuth: true });
    const script = `
import poplib, smtplib
smtp = smtplib.SMTP('127.0.0.1', ${controller.port})
smtp.sendmail('carol@example.org', ['bob@example.com'], b'Subject: for bob\\r\\nX-N: 1\\r\\n\\r\\nline 1\\r\\nline 2\\r\\n')
smtp.sendmail('carol@example.org', ['alice@example.com'], b'Subject: for alice\\r\\n\\r\\nx\\r\\n')
smtp.quit()
p = poplib.POP3('127.0.0.1', ${pop})
p.user('bob@example.com')
p.pass_('builder')
print(p.stat()[0])
resp, lines, octets = p.top(1, 1)
print([l.decode() for l in lines])
resp, uids, octets = p.uidl()
print(len(uids), uids[0].decode().split(' ')[0])
p.dele(1)
p.quit()
`;
    const out = (await runPython(script, controller.port)).split('\n');
    expect(out.slice(0, 3)).toEqual(['1', "['Subject: for bob', 'X-N: 1', '', 'line 1']", '1 1']);
    expect(controller.inbox.messages.map((m) => m.subject)).toEqual(['for alice']);
  });
});

describe('POP3 sessions', () => {
  it('lets one session at a time hold a maildrop', async () => {
    const { pop } = await maildirPair({ allowInsecureAuth: true });
    const first = await Pop3Client.connect(pop);
    await first.line();
    await first.command('USER alice@example.com');
    expect(await first.command('PASS wonderland')).toBe('+OK alice@example.com has 0 messages (0 octets)\r\n');
    const second = await Pop3Client.connect(pop);
    await second.line();
    await second.command('USER alice@example.com');
    expect(await second.command('PASS wonderland')).toBe('-ERR [IN-USE] The mailbox is already in use\r\n');
    expect(await first.command('QUIT')).toBe('+OK pop.test POP3 server signing off (0 messages left)\r\n');
    await first.closedByServer();
    await second.command('USER alice@example.com');
    expect(await second.command('PASS wonderland')).toBe('+OK alice@example.com has 0 messages (0 octets)\r\n');
    second.close();
  });

  it('names a Unix socket client by its socket, to the password check and in the logs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sirocco-pop3-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const path = join(root, 'pop3.sock');
    const lines: string[] = [];
    const seen: string[] = [];
    const server = new Pop3Server({
      store: new MaildirStore(root, { perUser: true }),
      hostname: 'pop.test',
      allowInsecureAuth: true,
      logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }),
      authenticate: (c: AuthCredentials, client: Pop3ClientFacts) => (
        seen.push(`${client.remoteAddress}|${client.localAddress}`),
        authenticate(c)
      ),
    });
    await server.listen(path);
    servers.push(server);
    const c = await Pop3Client.connect(path);
    await c.line();
    await c.command('USER alice@example.com');
    expect(await c.command('PASS wonderland')).toBe('+OK alice@example.com has 0 messages (0 octets)\r\n');
    c.close();
    expect(seen).toEqual([`|${path}`]);
    const login = lines.map((l) => JSON.parse(l) as { msg: string; client?: string }).find((l) => l.msg === 'pop3 login');
    expect(login?.client).toBe(`unix:${path}`);
  });

  it('answers bad input with -ERR and its reason, exactly, and never hangs', async () => {
    const { pop } = await maildirPair({ tls: { key: certs.key, cert: certs.cert } });
    const c = await Pop3Client.connect(pop);
    expect(await c.line()).toBe('+OK pop.test POP3 server ready\r\n');
    expect(await c.command('USER alice@example.com')).toBe('-ERR [AUTH] Plaintext authentication is disabled: use STLS first\r\n');
    expect(await c.command('RETR 1')).toBe('-ERR Not authenticated: send USER and PASS first\r\n');
    expect(await c.command('HELO')).toBe('-ERR Unknown command\r\n');
    expect(await c.command(`NOOP ${'x'.repeat(600)}`)).toBe('-ERR Line too long\r\n');
    expect(await c.command('')).toBe('-ERR Empty command\r\n');
    c.close();

    const { pop: open } = await maildirPair({ allowInsecureAuth: true });
    const d = await Pop3Client.connect(open);
    await d.line();
    expect(await d.command('PASS x')).toBe('-ERR Send USER first\r\n');
    await d.command('USER alice@example.com');
    expect(await d.command('PASS wrong')).toBe('-ERR [AUTH] Invalid user name or password\r\n');
    await d.command('USER alice@example.com');
    await d.command('PASS wonderland');
    expect(await d.command('RETR 1')).toBe('-ERR No such message: 1\r\n');
    expect(await d.command('TOP x 1')).toBe('-ERR Invalid message number: x\r\n');
    expect(await d.command('STLS')).toBe('-ERR Already authenticated\r\n');
    // Nine refusals so far (a wrong password counts): the tenth closes the session.
    for (let i = 0; i < 4; i++) expect(await d.command('BOGUS')).toBe('-ERR Unknown command\r\n');
    d.send('BOGUS');
    expect(await d.closedByServer()).toBe('-ERR Unknown command\r\n-ERR Too many errors, closing connection\r\n');
  });

  it('streams a large message, stuffed, and says -ERR for one removed meanwhile', async () => {
    const { pop, root } = await maildirPair({ allowInsecureAuth: true });
    const folder = join(root, 'alice@example.com');
    for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(folder, sub), { recursive: true });
    const line = '.dotted line of text, long enough to make the message big\r\n';
    const body = line.repeat(Math.ceil((5 * 1024 * 1024) / line.length));
    writeFileSync(join(folder, 'new', '1000.big.host'), `Subject: big\r\n\r\n${body}`);
    writeFileSync(join(folder, 'new', '1001.small.host'), 'Subject: small\r\n\r\nx\r\n');
    const c = await Pop3Client.connect(pop);
    await c.line();
    await c.command('USER alice@example.com');
    expect(await c.command('PASS wonderland')).toMatch(/^\+OK alice@example\.com has 2 messages/);
    const size = 16 + body.length;
    expect(await c.command('RETR 1')).toBe(`+OK ${size} octets\r\n`);
    const sent = await c.until('\r\n.\r\n');
    expect(sent.length).toBe(size + body.length / line.length + 3);
    expect(sent.startsWith('Subject: big\r\n\r\n..dotted line')).toBe(true);
    rmSync(join(folder, 'new', '1001.small.host'));
    expect(await c.command('RETR 2')).toBe('-ERR [SYS/TEMP] The message cannot be read now\r\n');
    c.close();
  });

  it('closes a session idle past idleTimeout', async () => {
    const { pop } = await maildirPair({ allowInsecureAuth: true, idleTimeout: 1000 });
    const c = await Pop3Client.connect(pop);
    await c.line();
    expect(await c.closedByServer()).toBe('-ERR Idle timeout, closing connection\r\n');
  });

  it('names every bad setting', () => {
    expect(() => new Pop3Server({ implicitTLS: true, idleTimeout: 5 } as unknown as Pop3ServerOptions)).toThrow(SettingsError);
    expect(() => new Pop3Server({ implicitTLS: true, idleTimeout: 5 } as unknown as Pop3ServerOptions)).toThrow(
      'Invalid settings: idleTimeout: idleTimeout must not be less than 1000; implicitTLS: implicitTLS needs the tls setting; store: store must be a Pop3Store (MaildirStore, or an inbox); authenticate: authenticate must be a function',
    );
  });

  it('refuses an option it does not know, with the nearest name', () => {
    const store = new MaildirStore(tmpdir());
    expect(
      () => new Pop3Server({ store, authenticate, hostnam: 'pop.test', idleTimeOut: 5000, colour: 'blue' } as unknown as Pop3ServerOptions),
    ).toThrow(
      'Invalid settings: hostnam: unknown setting, did you mean hostname?; idleTimeOut: unknown setting, did you mean idleTimeout?; colour: unknown setting',
    );
  });
});

describe('sirocco --pop3-listen', () => {
  const CLI = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));

  it('serves the Maildir it writes over POP3, for the users of a file', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sirocco-pop3-cli-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'users'), '# name:password\nalice@example.com:wonderland\n');
    const [smtp, pop] = [await freePort(), await freePort()];
    const server = startTsx([
      CLI,
      '--listen',
      `127.0.0.1:${smtp}`,
      '--handler',
      `maildir:${join(root, 'mail')}`,
      '--set',
      'maildirPerRecipient=true',
      '--set',
      'allowInsecureAuth=true',
      '--pop3-listen',
      `127.0.0.1:${pop}`,
      '--pop3-users',
      join(root, 'users'),
    ]);
    cleanups.push(() => stopAll());
    await until(() => server.stdout().includes('serving POP3 on 127.0.0.1:'), 15_000);
    const script = `
import poplib, smtplib
smtp = smtplib.SMTP('127.0.0.1', ${smtp})
smtp.sendmail('carol@example.org', ['alice@example.com'], b'Subject: via the command\\r\\n\\r\\nhi\\r\\n')
smtp.quit()
p = poplib.POP3('127.0.0.1', ${pop})
p.user('alice@example.com')
p.pass_('wonderland')
resp, lines, octets = p.retr(1)
print([l.decode() for l in lines if l.startswith(b'Subject')])
p.quit()
`;
    expect((await runPython(script, smtp)).trim()).toBe("['Subject: via the command']");
  });

  it('says what is missing', async () => {
    const run = startTsx([CLI, '--pop3-listen', '127.0.0.1:1110', '--pop3-users', 'users.txt']);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toBe('sirocco: --pop3-listen serves the Maildir of --handler maildir:DIR (see --help)\n');
    const noUsers = startTsx([CLI, '--handler', 'maildir:/tmp/x', '--pop3-listen', '127.0.0.1:1110']);
    expect(await noUsers.exited).toBe(2);
    expect(noUsers.stderr()).toBe('sirocco: --pop3-listen needs --pop3-users FILE (NAME:PASSWORD lines) (see --help)\n');
  });
});

describe('POP3 password guessing', () => {
  it('refuses PASS from an address past authFailuresPerIp, in any session, until the window passes', async () => {
    const { pop } = await maildirPair({ allowInsecureAuth: true, authFailuresPerIp: 2, limitWindow: 60_000, limitExempt: [] });
    const guess = async (): Promise<string> => {
      const c = await Pop3Client.connect(pop);
      await c.line();
      await c.command('USER alice@example.com');
      const answer = await c.command('PASS guess');
      c.close();
      return answer;
    };
    expect(await guess()).toBe('-ERR [AUTH] Invalid user name or password\r\n');
    expect(await guess()).toBe('-ERR [AUTH] Invalid user name or password\r\n');
    expect(await guess()).toBe('-ERR [AUTH] Too many authentication failures from your address, try again later\r\n');
  });
});

describe('POP3 QUIT', () => {
  it('closes the socket once the last line is written, without waiting for the client to close', async () => {
    const controller = new Controller(RequestHandler, { inbox: true });
    await controller.start();
    cleanups.push(() => controller.stop());
    const pop = await pop3({ store: new InboxStore(controller.inbox), allowInsecureAuth: true });
    // allowHalfOpen: the client keeps its side open after the server's FIN.
    const socket = connect({ port: pop, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    let ended = false;
    let failed = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => (ended = true));
    socket.on('error', (err: NodeJS.ErrnoException) => (failed = err.code ?? err.message));
    await until(() => text.startsWith('+OK'));
    socket.write('QUIT\r\n');
    await until(() => ended);
    expect(text.split('\r\n').slice(1)).toEqual(['+OK pop.test POP3 server signing off', '']);
    // The server's socket is gone, so what the client writes now is answered with a reset; before,
    // the server held the socket open, ignoring input, until the client closed or 5 s passed.
    for (let i = 0; i < 20 && failed === ''; i++) {
      socket.write('NOOP\r\n');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(['ECONNRESET', 'EPIPE']).toContain(failed);
    socket.destroy();
  });
});
