/**
 * What one client can cost: a client that sends without reading is not read either (POP3 as
 * SMTP), password checks are limited by the number of checks, not of failures already counted,
 * an IPv6 client is its /64, and a POP3 client has the SMTP server's per-client caps. Each test
 * failed before the connection kit was shared.
 */
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, type AuthCredentials } from '../../lib/index.js';
import { MaildirStore, Pop3Server, type Pop3ServerOptions } from '../../lib/entry/pop3.js';
import { floodUnread, MiB } from '../helpers/flood.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, silent, startServer, until } from '../helpers/server.js';

const servers: Pop3Server[] = [];
const folders: string[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.close();
  await closeServers();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const PASSWORDS: Record<string, string> = { alice: 'wonderland', bob: 'builder' };

/** A Maildir (one for everyone) holding `messages`, served over POP3. */
async function pop3(options: Partial<Pop3ServerOptions> = {}, messages: Buffer[] = []): Promise<{ port: number; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'sirocco-pop3-limits-'));
  folders.push(root);
  for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(root, sub));
  messages.forEach((m, i) => writeFileSync(join(root, 'new', `${1000 + i}.M1P1Q${i}.test`), m));
  const server = new Pop3Server({
    store: new MaildirStore(root),
    authenticate: (c: AuthCredentials) => c.mechanism === 'PLAIN' && PASSWORDS[c.username] === c.password,
    hostname: 'pop.test',
    allowInsecureAuth: true,
    logger: silent,
    ...options,
  });
  await server.listen(0, '127.0.0.1');
  servers.push(server);
  return { port: server.address()?.port ?? 0, root };
}

async function rawSocket(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  sockets.push(socket);
  return socket;
}

describe('a client that sends without reading', () => {
  it('is not read by POP3 either: CAPA before login, the replies never read', async () => {
    const { port } = await pop3();
    const taken = await floodUnread(await rawSocket(port), 'CAPA\r\n', 48 * MiB);
    // What left the client sits in the kernel's buffers on the way: a few MiB, not the 48 sent.
    expect(taken).toBeLessThan(20 * MiB);
  });

  it('is not read by POP3 while a RETR it does not read is under way', async () => {
    const { port } = await pop3({}, [Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(20_000))]);
    const socket = await rawSocket(port);
    socket.write('USER alice\r\nPASS wonderland\r\nRETR 1\r\n');
    const taken = await floodUnread(socket, 'NOOP\r\n', 48 * MiB);
    expect(taken).toBeLessThan(20 * MiB);
  });

  it('is not read by SMTP either (NOOP, the replies never read)', async () => {
    const { port } = await startServer(RequestHandler);
    const taken = await floodUnread(await rawSocket(port), 'NOOP\r\n', 48 * MiB);
    expect(taken).toBeLessThan(20 * MiB);
  });
});

describe('POP3 per-client limits', () => {
  it('caps sessions per client address, as SMTP does', async () => {
    const { port } = await pop3({ maxConnectionsPerIp: 2, limitExempt: [] });
    const held = [await Pop3Client.connect(port), await Pop3Client.connect(port)];
    for (const c of held) expect(await c.line()).toBe('+OK pop.test POP3 server ready\r\n');
    const third = await Pop3Client.connect(port);
    expect(await third.closedByServer()).toBe('-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n');
    for (const c of held) c.close();
  });

  it('closes the message file of a RETR the client stalled when the idle timer ends the session', async () => {
    const { port, root } = await pop3({ idleTimeout: 1000 }, [Buffer.from(`Subject: big\r\n\r\n${'y'.repeat(998)}\r\n`.repeat(20_000))]);
    const socket = await rawSocket(port);
    socket.pause();
    socket.write('USER alice\r\nPASS wonderland\r\nRETR 1\r\n');
    const openFiles = (): string[] =>
      readdirSync('/proc/self/fd')
        .map((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            return '';
          }
        })
        .filter((target) => target.startsWith(root));
    await until(() => openFiles().length === 1, 5000);
    await until(() => socket.destroyed || socket.readableEnded || openFiles().length === 0, 8000);
    await until(() => openFiles().length === 0, 3000);
  });

  it('locks the maildrop, not the user name: two users of one shared Maildir cannot both hold it', async () => {
    const { port } = await pop3();
    const alice = await Pop3Client.connect(port);
    await alice.line();
    await alice.command('USER alice');
    expect(await alice.command('PASS wonderland')).toBe('+OK alice has 0 messages (0 octets)\r\n');
    const bob = await Pop3Client.connect(port);
    await bob.line();
    await bob.command('USER bob');
    expect(await bob.command('PASS builder')).toBe('-ERR [IN-USE] The mailbox is already in use\r\n');
    alice.close();
    bob.close();
  });
});

describe('password checks under way count against the limit', () => {
  const slow = (calls: { n: number }) => async (): Promise<boolean> => {
    calls.n++;
    await new Promise((r) => setTimeout(r, 300));
    return false;
  };

  it('POP3: 50 parallel wrong guesses reach authenticate 3 times when authFailuresPerIp is 3', async () => {
    const calls = { n: 0 };
    const { port } = await pop3({ authenticate: slow(calls), authFailuresPerIp: 3, limitExempt: [], maxConnectionsPerIp: 0 });
    const guesses = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const c = await Pop3Client.connect(port);
        await c.line();
        await c.command('USER alice');
        const answer = await c.command('PASS guess');
        c.close();
        return answer;
      }),
    );
    expect(calls.n).toBe(3);
    expect(guesses.filter((g) => g === '-ERR [AUTH] Invalid user name or password\r\n')).toHaveLength(3);
    expect(guesses.filter((g) => g.startsWith('-ERR [AUTH] Too many authentication failures'))).toHaveLength(47);
  });

  it('SMTP: 50 parallel wrong guesses reach authenticate 3 times when authFailuresPerIp is 3', async () => {
    const calls = { n: 0 };
    const { port } = await startServer(RequestHandler, {
      authenticate: slow(calls),
      allowInsecureAuth: true,
      authFailuresPerIp: 3,
      limitExempt: [],
      maxConnectionsPerIp: 0,
      connectionRatePerIp: 0,
    });
    const plain = Buffer.from('\0alice\0guess').toString('base64');
    const answers = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const c = await RawClient.ehlo(port);
        const answer = await c.command(`AUTH PLAIN ${plain}`);
        c.close();
        return answer;
      }),
    );
    expect(calls.n).toBe(3);
    expect(answers.filter((a) => a.startsWith('535 '))).toHaveLength(3);
    expect(answers.filter((a) => a.startsWith('454 4.7.0'))).toHaveLength(47);
  });

  it('an IPv6 client rotating its address inside one /64 (through PROXY) is one client', async () => {
    const calls = { n: 0 };
    const { port } = await startServer(RequestHandler, {
      authenticate: () => (calls.n++, false),
      allowInsecureAuth: true,
      authFailuresPerIp: 3,
      proxyFrom: ['127.0.0.1'],
      limitExempt: [],
    });
    const plain = Buffer.from('\0alice\0guess').toString('base64');
    const answers: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const c = await RawClient.connect(port);
      c.write(`PROXY TCP6 2001:db8:7:7::${i.toString(16)} 2001:db8::1 4000 25\r\n`);
      await c.reply();
      await c.command('EHLO c.test');
      answers.push(await c.command(`AUTH PLAIN ${plain}`));
      c.close();
    }
    expect(calls.n).toBe(3);
    expect(answers.slice(3).every((a) => a.startsWith('454 4.7.0'))).toBe(true);
  });
});
