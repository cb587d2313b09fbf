/** `sirocco catch`: the catcher as one command, SMTP and the HTTP API side by side. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';
import { startTsx, stopAll, terminate } from '../helpers/processes.js';
import { runPython } from '../helpers/python.js';
import { freePort, until } from '../helpers/server.js';

afterEach(stopAll);

describe('sirocco catch', () => {
  it('accepts every recipient over SMTP and answers wait over HTTP; closes on SIGTERM', async () => {
    const smtp = await freePort();
    const http = await freePort();
    const catcher = startTsx(['lib/cli/main.ts', 'catch', '--smtp', `127.0.0.1:${smtp}`, '--http', `127.0.0.1:${http}`]);
    await until(() => catcher.stdout().includes('\n'), 20_000);
    expect(catcher.stdout()).toBe(`sirocco catch: SMTP on 127.0.0.1:${smtp}, web view on http://127.0.0.1:${http}/ (API under /api/v1/)\n`);
    const waiting = fetch(`http://127.0.0.1:${http}/api/v1/wait?to=anyone@anywhere.test&timeout=10000`);
    const client = await RawClient.ehlo(smtp);
    expect(await client.command('MAIL FROM:<app@example.com>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<anyone@anywhere.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('DATA')).toMatch(/^354 /);
    expect(await client.command('Subject: caught\r\n\r\nhello\r\n.')).toMatch(/^250 2\.0\.0 /);
    client.close();
    const found = await waiting;
    expect(found.status).toBe(200);
    expect(await found.json()).toMatchObject({
      mailFrom: 'app@example.com',
      rcptTos: ['anyone@anywhere.test'],
      subject: 'caught',
      text: 'hello\n',
    });
    expect(await terminate(catcher)).toBe(0);
    expect(catcher.stdout()).toMatch(/sirocco: closing\n$/);
  }, 30_000);

  it('names a bad option and exits 2', async () => {
    const bad = startTsx(['lib/cli/main.ts', 'catch', '--smtp', '127.0.0.1:99999']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toBe('sirocco: --smtp: port 99999 is out of range (see sirocco catch --help)\n');
    const unknown = startTsx(['lib/cli/main.ts', 'catch', '--pop']);
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toBe('sirocco: catch: unknown option "--pop" (see sirocco catch --help)\n');
    const release = startTsx(['lib/cli/main.ts', 'catch', '--release-to', 'mx.example.com:0']);
    expect(await release.exited).toBe(2);
    expect(release.stderr()).toBe('sirocco: --release-to: port 0 names no server (see sirocco catch --help)\n');
    const auth = startTsx(['lib/cli/main.ts', 'catch'], { SIROCCO_CATCH_AUTH: 'nocolon' });
    expect(await auth.exited).toBe(2);
    expect(auth.stderr()).toBe('sirocco: SIROCCO_CATCH_AUTH: expected user:password (see sirocco catch --help)\n');
  }, 30_000);

  it('serves the caught mail over POP3 with --pop3: the user is a recipient, any password', async () => {
    const [smtp, http, pop] = [await freePort(), await freePort(), await freePort()];
    const catcher = startTsx([
      'lib/cli/main.ts',
      'catch',
      '--smtp',
      `127.0.0.1:${smtp}`,
      '--http',
      `127.0.0.1:${http}`,
      '--pop3',
      `127.0.0.1:${pop}`,
    ]);
    await until(() => catcher.stdout().includes('\n'), 20_000);
    expect(catcher.stdout()).toBe(
      `sirocco catch: SMTP on 127.0.0.1:${smtp}, web view on http://127.0.0.1:${http}/ (API under /api/v1/), POP3 on 127.0.0.1:${pop}\n`,
    );
    const out = await runPython(
      `
import poplib, smtplib
s = smtplib.SMTP('127.0.0.1', ${smtp})
s.sendmail('app@example.com', ['bob@example.com'], b'Subject: for bob\\r\\n\\r\\nhi bob\\r\\n')
s.quit()
p = poplib.POP3('127.0.0.1', ${pop})
p.user('bob@example.com')
p.pass_('anything')
print(p.stat()[0])
print(b'\\n'.join(p.retr(1)[1]).decode())
p.quit()
`,
      pop,
    );
    expect(out).toContain('1\nSubject: for bob\n\nhi bob\n');
    expect(await terminate(catcher)).toBe(0);
  }, 30_000);

  it('keeps the caught mail across a restart with --catch-dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-catch-'));
    try {
      const [smtp, http] = [await freePort(), await freePort()];
      const args = ['lib/cli/main.ts', 'catch', '--smtp', `127.0.0.1:${smtp}`, '--http', `127.0.0.1:${http}`, '--catch-dir', dir];
      const first = startTsx(args);
      await until(() => first.stdout().includes('SMTP on'), 20_000);
      expect(first.stdout()).toMatch(new RegExp(`^sirocco catch: 0 messages read from ${dir}\n`));
      await runPython(
        `
import smtplib
s = smtplib.SMTP('127.0.0.1', ${smtp})
s.sendmail('app@example.com', ['bob@example.com'], b'Subject: kept\\r\\n\\r\\nstill here\\r\\n')
s.quit()
`,
        smtp,
      );
      expect(await terminate(first)).toBe(0);
      expect(readdirSync(join(dir, 'new'))).toHaveLength(1);
      const second = startTsx(args);
      await until(() => second.stdout().includes('SMTP on'), 20_000);
      expect(second.stdout()).toMatch(new RegExp(`^sirocco catch: 1 message read from ${dir}\n`));
      const page = (await (await fetch(`http://127.0.0.1:${http}/api/v1/messages`)).json()) as {
        total: number;
        messages: { subject: string; rcptTos: string[] }[];
      };
      expect([page.total, page.messages[0]?.subject, page.messages[0]?.rcptTos]).toEqual([1, 'kept', ['bob@example.com']]);
      expect(await terminate(second)).toBe(0);
      const empty = startTsx(['lib/cli/main.ts', 'catch', '--catch-dir']);
      expect(await empty.exited).toBe(2);
      expect(empty.stderr()).toBe('sirocco: --catch-dir needs a folder (see sirocco catch --help)\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
