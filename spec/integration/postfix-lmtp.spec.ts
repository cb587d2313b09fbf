/**
 * Postfix's own `lmtp` delivery agent delivering into Sirocco: a private Postfix instance (its own
 * config_directory, queue_directory and data_directory in a temporary folder, no listener at all,
 * delivering to 127.0.0.1 only) takes a message for three recipients with `sendmail -C` and hands
 * it to a Sirocco LMTP server, which takes one, defers one and refuses one. Postfix's own log and
 * queue show each recipient's fate. Needs Debian's postfix and root (Postfix's master starts as
 * root); without them the test says why and skips.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError } from '../../lib/index.js';
import { postfixUnavailable, privatePostfix, run, type PrivatePostfix } from '../helpers/postfix.js';
import { closeServers, startServer } from '../helpers/server.js';

const reason = postfixUnavailable();
if (reason !== undefined) console.log(`postfix-lmtp: skipped: ${reason}`);

class PerRecipient extends RequestHandler {
  override data(): void {
    this.request.rcptTos.forEach((address, i) => {
      if (address.startsWith('full@')) this.failRecipient(i, new SMTPError(452, [4, 2, 2], 'Mailbox full'));
      if (address.startsWith('gone@')) this.failRecipient(i, new SMTPError(550, [5, 1, 1], 'No such user'));
    });
  }
}

describe.skipIf(reason !== undefined)("Postfix's lmtp client", () => {
  const root = mkdtempSync(join(tmpdir(), 'sirocco-postfix-'));
  let postfix: PrivatePostfix | undefined;

  afterAll(async () => {
    await postfix?.stop();
    await closeServers();
    rmSync(root, { recursive: true, force: true });
  });

  it('delivers one message to three recipients with a result each: sent, deferred, bounced', async () => {
    const { port } = await startServer(PerRecipient, { lmtp: true, hostname: 'lmtp.test' });
    // Postfix's services without any listener: no smtpd on port 25, nothing but loopback LMTP out.
    const instance = privatePostfix(root, [
      'myhostname = postfix.test',
      'mydomain = postfix.test',
      'myorigin = postfix.test',
      'relayhost =',
      `default_transport = lmtp:inet:127.0.0.1:${port}`,
      'lmtp_host_lookup = native',
    ]);
    const { conf, maillog } = instance;
    try {
      await instance.start();
      postfix = instance;
    } catch (err) {
      const log = existsSync(maillog) ? readFileSync(maillog, 'utf8') : '';
      console.log(`postfix-lmtp: skipped: the private Postfix did not start: ${(err as Error).message} ${log}`);
      return;
    }
    await run(
      '/usr/sbin/sendmail',
      ['-C', conf, '-f', 'a@b.test', 'ok@d.test', 'full@d.test', 'gone@d.test'],
      'Subject: via Postfix\n\nhello\n',
    );

    const statuses = (): string[] =>
      (existsSync(maillog) ? readFileSync(maillog, 'utf8').split('\n') : []).filter((l) =>
        / to=<(ok|full|gone)@d\.test>.* status=/.test(l),
      );
    for (let i = 0; i < 150 && statuses().length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const byRecipient = (who: string): string => statuses().find((l) => l.includes(`to=<${who}@d.test>`)) ?? '';
    expect(byRecipient('ok')).toMatch(/dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\)/);
    expect(byRecipient('full')).toMatch(/dsn=4\.2\.2, status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 452 4\.2\.2 Mailbox full/);
    expect(byRecipient('gone')).toMatch(/dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 No such user/);

    // Postfix's queue keeps the deferred recipient alone, with Sirocco's reply as the reason.
    const queue = (await run('/usr/sbin/postqueue', ['-c', conf, '-j']))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { queue_name: string; recipients: { address: string; delay_reason: string }[] });
    const deferred = queue.filter((m) => m.queue_name === 'deferred').flatMap((m) => m.recipients);
    expect(deferred).toEqual([
      { address: 'full@d.test', delay_reason: 'host 127.0.0.1[127.0.0.1] said: 452 4.2.2 Mailbox full (in reply to end of DATA command)' },
    ]);
  });
});
