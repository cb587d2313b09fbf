/** InboxDirectory: a catcher's inbox kept in a Maildir, across restarts, in step with deletions. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { Controller, InboxDirectory, type CaughtMessage } from '../../lib/entry/testing.js';
import { RawClient } from '../helpers/raw-client.js';
import { until } from '../helpers/server.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-catch-dir-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A catcher whose inbox lives in `dir`; resolves once what `dir` held is caught again. */
async function catcher(
  dir: string,
  maxMessages = 100,
): Promise<{ controller: Controller; kept: InboxDirectory; errors: string[]; read: number }> {
  const controller = new Controller(RequestHandler, { inbox: { maxMessages } });
  const errors: string[] = [];
  const kept = new InboxDirectory(dir, (err) => errors.push(err.message));
  const read = await kept.attach(controller.inbox);
  await controller.start();
  cleanups.push(async () => {
    await controller.stop();
    await kept.detach();
  });
  return { controller, kept, errors, read };
}

async function send(port: number, to: string, subject: string): Promise<void> {
  const client = await RawClient.ehlo(port);
  expect(await client.command('MAIL FROM:<app@example.com>')).toMatch(/^250 /);
  expect(await client.command(`RCPT TO:<${to}>`)).toMatch(/^250 /);
  expect(await client.command('DATA')).toMatch(/^354 /);
  expect(await client.command(`Subject: ${subject}\r\n\r\nbody of ${subject}\r\n.`)).toMatch(/^250 /);
  client.close();
}

const files = (dir: string, sub: string): string[] => readdirSync(join(dir, sub)).sort();

describe('InboxDirectory', () => {
  it('writes each message to new/ with its envelope beside it, and a restart catches them again, same ids', async () => {
    const dir = folder();
    const first = await catcher(dir);
    expect(first.read).toBe(0);
    await send(first.controller.port, 'bob@example.com', 'one');
    await send(first.controller.port, 'carol@example.com', 'two');
    await first.kept.detach();
    const before = first.controller.inbox.messages;
    const [one] = before as [CaughtMessage];
    const names = files(dir, 'new');
    expect(names).toHaveLength(2);
    // Names start with the time received: two messages in one millisecond may sort either way.
    const name = names.find((n) => readFileSync(join(dir, '.sirocco', `${n}.json`), 'utf8').includes(one.id)) ?? '';
    expect(readFileSync(join(dir, 'new', name)).equals(one.raw)).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, '.sirocco', `${name}.json`), 'utf8'))).toEqual({
      id: one.id,
      mailFrom: 'app@example.com',
      rcptTos: ['bob@example.com'],
      receivedAt: one.receivedAt.toISOString(),
      session: { remoteAddress: '127.0.0.1', heloName: one.session.heloName, secure: false },
    });
    expect(files(dir, 'tmp')).toEqual([]);

    const second = await catcher(dir);
    expect(second.read).toBe(2);
    expect(second.errors).toEqual([]);
    const after = second.controller.inbox.messages;
    expect(after.map((m) => [m.id, m.mailFrom, m.rcptTos, m.subject, m.receivedAt.toISOString(), m.raw.toString()])).toEqual(
      before.map((m) => [m.id, m.mailFrom, m.rcptTos, m.subject, m.receivedAt.toISOString(), m.raw.toString()]),
    );
  });

  it('unlinks what leaves the inbox: deleted, cleared, dropped for the cap, or moved to cur/ by a reader first', async () => {
    const dir = folder();
    const { controller, kept } = await catcher(dir, 2);
    for (const subject of ['a', 'b', 'c']) await send(controller.port, 'bob@example.com', subject);
    await kept.detach();
    // The cap of two dropped "a", its files too.
    expect(controller.inbox.messages.map((m) => m.subject)).toEqual(['b', 'c']);
    // The message's file and its record are unlinked one after the other: wait for both.
    await until(() => files(dir, 'new').length === 2 && files(dir, '.sirocco').length === 2);
    expect(files(dir, '.sirocco')).toHaveLength(2);
    const { controller: again } = await catcher(dir, 2);
    // A reader marks "b" seen: new/name becomes cur/name:2,S.
    const [b] = again.inbox.messages as [CaughtMessage];
    const name = files(dir, 'new').find((f) => readFileSync(join(dir, 'new', f), 'utf8').includes('Subject: b')) ?? '';
    renameSync(join(dir, 'new', name), join(dir, 'cur', `${name}:2,S`));
    again.inbox.remove([b.id]);
    await until(() => files(dir, 'cur').length === 0);
    expect(files(dir, 'new')).toHaveLength(1);
    expect(files(dir, '.sirocco')).toHaveLength(1);
    again.inbox.clear();
    await until(() => files(dir, 'new').length + files(dir, '.sirocco').length === 0);
    expect([files(dir, 'new'), files(dir, 'cur'), files(dir, '.sirocco')]).toEqual([[], [], []]);
  });

  it('catches a file another tool delivered, its envelope from its headers, the same id after a restart', async () => {
    const dir = folder();
    for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(dir, sub));
    writeFileSync(
      join(dir, 'cur', '1700000000.M1P1.other:2,S'),
      'Return-Path: <list@example.org>\r\nDelivered-To: ann@example.com\r\nTo: someone@example.com\r\nSubject: from elsewhere\r\n\r\nhi\r\n',
    );
    const { controller, read, errors } = await catcher(dir);
    expect(read).toBe(1);
    expect(errors).toEqual([]);
    const [foreign] = controller.inbox.messages as [CaughtMessage];
    expect([foreign.id, foreign.mailFrom, foreign.rcptTos, foreign.subject]).toEqual([
      expect.stringMatching(/^f[0-9a-f]{16}$/),
      'list@example.org',
      ['ann@example.com'],
      'from elsewhere',
    ]);
    // The same file is the same id after a restart.
    const other = new Controller(RequestHandler, { inbox: true });
    const keptAgain = new InboxDirectory(dir, () => undefined);
    expect(await keptAgain.attach(other.inbox)).toBe(1);
    await keptAgain.detach();
    expect(other.inbox.messages[0]?.id).toBe(foreign.id);
  });

  it('names the folder when it cannot be made', async () => {
    const file = join(folder(), 'plain-file');
    writeFileSync(file, '');
    const controller = new Controller(RequestHandler, { inbox: true });
    await expect(new InboxDirectory(join(file, 'mail')).attach(controller.inbox)).rejects.toThrow(
      /^ENOTDIR: not a directory, mkdir '.*plain-file\/mail/,
    );
  });
});
