/**
 * Postfix's own `lmtp` delivery agent delivering into Sirocco: a private Postfix instance (its own
 * config_directory, queue_directory and data_directory in a temporary folder, no listener at all,
 * delivering to 127.0.0.1 only) takes a message for three recipients with `sendmail -C` and hands
 * it to a Sirocco LMTP server, which takes one, defers one and refuses one. Postfix's own log and
 * queue show each recipient's fate. Needs Debian's postfix and root (Postfix's master starts as
 * root); without them the test says why and skips.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError } from '../../lib/index.js';
import { closeServers, startServer } from '../helpers/server.js';

function unavailable(): string | undefined {
  if (!existsSync('/usr/sbin/postfix') || !existsSync('/usr/sbin/sendmail')) return "Debian's postfix is not installed";
  if (process.getuid?.() !== 0) return `Postfix's master must start as root, and this runs as ${userInfo().username}`;
  try {
    execFileSync('id', ['postfix'], { stdio: 'ignore' });
  } catch {
    return 'there is no postfix user';
  }
  return undefined;
}

const reason = unavailable();
if (reason !== undefined) console.log(`postfix-lmtp: skipped: ${reason}`);

class PerRecipient extends RequestHandler {
  override data(): void {
    this.request.rcptTos.forEach((address, i) => {
      if (address.startsWith('full@')) this.failRecipient(i, new SMTPError(452, [4, 2, 2], 'Mailbox full'));
      if (address.startsWith('gone@')) this.failRecipient(i, new SMTPError(550, [5, 1, 1], 'No such user'));
    });
  }
}

function run(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

describe.skipIf(reason !== undefined)("Postfix's lmtp client", () => {
  const root = mkdtempSync(join(tmpdir(), 'sirocco-postfix-'));
  const conf = join(root, 'conf');
  let started = false;

  afterAll(async () => {
    if (started) {
      // The master's pid, from its own pid file: only the instance this test started is stopped.
      const pidFile = join(root, 'queue', 'pid', 'master.pid');
      await run('/usr/sbin/postfix', ['-c', conf, 'stop']).catch(() => undefined);
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
      for (let i = 0; i < 50 && Number.isInteger(pid); i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await closeServers();
    rmSync(root, { recursive: true, force: true });
  });

  it('delivers one message to three recipients with a result each: sent, deferred, bounced', async () => {
    const { port } = await startServer(PerRecipient, { lmtp: true, hostname: 'lmtp.test' });
    chmodSync(root, 0o755);
    for (const dir of ['conf', 'queue', 'data']) mkdirSync(join(root, dir));
    const postfixUid = Number(execFileSync('id', ['-u', 'postfix']).toString().trim());
    chownSync(join(root, 'data'), postfixUid, -1);
    // Postfix's services without any listener: no smtpd on port 25, nothing but loopback LMTP out.
    const master = readFileSync('/etc/postfix/master.cf', 'utf8')
      .split('\n')
      .filter((line) => !/^smtp\s+inet\b/.test(line))
      .join('\n');
    writeFileSync(join(conf, 'master.cf'), master);
    const maillog = join(root, 'maillog');
    writeFileSync(
      join(conf, 'main.cf'),
      [
        'compatibility_level = 3.6',
        `queue_directory = ${join(root, 'queue')}`,
        `data_directory = ${join(root, 'data')}`,
        'mail_owner = postfix',
        'setgid_group = postdrop',
        'inet_interfaces = loopback-only',
        'inet_protocols = ipv4',
        'myhostname = postfix.test',
        'mydomain = postfix.test',
        'myorigin = postfix.test',
        'mydestination =',
        'relayhost =',
        `default_transport = lmtp:inet:127.0.0.1:${port}`,
        'lmtp_host_lookup = native',
        'alias_maps =',
        'alias_database =',
        'biff = no',
        'smtputf8_enable = no',
        `maillog_file = ${maillog}`,
        `maillog_file_prefixes = ${root}`,
      ].join('\n') + '\n',
    );
    try {
      await run('/usr/sbin/postfix', ['-c', conf, 'start']);
      started = true;
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
