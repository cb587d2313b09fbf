/**
 * Files: folder names that cannot collide or overflow, and no copy delivered twice on a retry.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Maildir, type AuthCredentials } from '../../lib/index.js';
import { MaildirStore, Pop3Server } from '../../lib/entry/pop3.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, silent, startServer } from '../helpers/server.js';

const folders: string[] = [];
const pops: Pop3Server[] = [];
afterEach(async () => {
  for (const p of pops.splice(0)) await p.close();
  await closeServers();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const LONG = `${'x'.repeat(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}`;

async function perRecipient(): Promise<{ port: number; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'sirocco-folders-'));
  folders.push(root);
  const { port } = await startServer(Maildir, { maildir: root, maildirPerRecipient: true });
  return { port, root };
}

async function send(port: number, to: readonly string[]): Promise<string[]> {
  const client = await RawClient.ehlo(port);
  await client.command('MAIL FROM:<a@b.test>');
  const answers: string[] = [];
  for (const rcpt of to) answers.push(await client.command(`RCPT TO:<${rcpt}>`));
  await client.command('DATA');
  answers.push(await client.command('Subject: hi\r\n\r\nhello\r\n.'));
  client.close();
  return answers;
}

const count = (root: string, folder: string): number => readdirSync(join(root, folder, 'new')).length;

describe('maildirPerRecipient', () => {
  it('refuses at RCPT, 550 5.1.1, an address whose folder name would pass 255 bytes; the others get one copy each time', async () => {
    const { port, root } = await perRecipient();
    for (let attempt = 0; attempt < 3; attempt++) {
      const answers = await send(port, ['alice@example.com', LONG]);
      expect(answers[1]).toBe('550 5.1.1 Mailbox name too long to be stored here\r\n');
      expect(answers[2]).toMatch(/^250 /);
    }
    expect(count(root, 'alice@example.com')).toBe(3);
  });

  it('stores "alice"@example.com where POP3 user alice@example.com reads, and a/b apart from a_b', async () => {
    const { port, root } = await perRecipient();
    await send(port, ['"alice"@example.com', 'a/b@example.com', 'a_b@example.com']);
    expect(readdirSync(root).sort()).toEqual(['a%2Fb@example.com', 'a_b@example.com', 'alice@example.com']);
    const pop = new Pop3Server({
      store: new MaildirStore(root, { perUser: true }),
      authenticate: (c: AuthCredentials) => c.mechanism === 'PLAIN' && c.password === 'pw',
      hostname: 'pop.test',
      allowInsecureAuth: true,
      logger: silent,
    });
    await pop.listen(0, '127.0.0.1');
    pops.push(pop);
    const client = await Pop3Client.connect(pop.address()?.port ?? 0);
    await client.line();
    await client.command('USER alice@example.com');
    expect(await client.command('PASS pw')).toMatch(/^\+OK alice@example\.com has 1 messages? /);
    client.close();
  });
});
