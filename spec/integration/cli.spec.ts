/** The sirocco command, run as a user runs it. */
import { writeFileSync } from 'node:fs';
import { makeCertificates } from '../helpers/certs.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, startTsx, stopAll, type Started } from '../helpers/processes.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, freePort, recordingHandler, startServer, until, type Received } from '../helpers/server.js';

const CLI = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/custom-handler.ts', import.meta.url));
const dirs: string[] = [];

afterEach(async () => {
  await stopAll();
  await closeServers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-cli-'));
  dirs.push(dir);
  return dir;
}

function run(args: string[]): Started {
  return startTsx([CLI, ...args]);
}

/** Starts the command on a free port and returns it with the port it serves. */
async function serve(args: string[]): Promise<Started & { port: number }> {
  const r = run(['--listen', '127.0.0.1:0', ...args]);
  await until(() => /serving .* on 127\.0\.0\.1:\d+/.test(r.stdout()) || r.child.exitCode !== null, 15_000);
  const port = Number(/ on 127\.0\.0\.1:(\d+)/.exec(r.stdout())?.[1] ?? 0);
  if (port === 0) throw new Error(`did not start: ${r.stderr()}`);
  return { ...r, port };
}

async function send(port: number | string, to = 'c@example.com', body = 'Subject: t\r\n\r\nhello'): Promise<RawClient & { last: string }> {
  const c = await RawClient.greeted(port);
  await c.command('EHLO client.test');
  await c.command('MAIL FROM:<a@b.test>');
  await c.command(`RCPT TO:<${to}>`);
  await c.command('DATA');
  return Object.assign(c, { last: await c.command(`${body}\r\n.`) });
}

describe('sirocco --config FILE', () => {
  const write = (text: string): string => {
    const file = join(tempDir(), 'sirocco.yaml');
    writeFileSync(file, text);
    return file;
  };

  it('serves what the file says, with flags winning over it, and the settings checked by the same schema', async () => {
    const file = write('handler: sink\nhostname: from-file.test\nmax-recipients: 1\nsettings:\n  maxLineLength: 2000\n');
    const r = await serve(['--config', file, '--hostname', 'from-flag.test']);
    const c = await RawClient.greeted(r.port);
    expect(await c.command('EHLO x.test')).toMatch(/^250-from-flag\.test greets x\.test\r\n/);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    expect(await c.command('RCPT TO:<e@d.test>')).toBe('452 4.5.3 Too many recipients\r\n');
    c.close();
  });

  it('--check-config prints the effective configuration, secrets masked, and exits 0 without listening', async () => {
    const file = write('listen: 127.0.0.1:2599\nhandler: sink\nworkers: 2\nsettings:\n  maxRecipients: 7\n  smarthostPassword: hunter2\n');
    const r = run(['--config', file, '--check-config']);
    expect(await r.exited).toBe(0);
    const out = r.stdout();
    expect(out.startsWith('listen:\n  host: 127.0.0.1\n  port: 2599\nhandler: sink\nworkers: 2\nsettings:\n')).toBe(true);
    expect(out).toContain('\n  maxRecipients: 7\n');
    expect(out).toContain('\n  smarthostPassword: "********"\n');
    expect(out).not.toContain('hunter2');
  });

  it('--check-config makes no folder: a missing maildir or queue folder is checked, not created', async () => {
    const base = tempDir();
    for (const handler of [`maildir:${join(base, 'mail', 'new-box')}`, `deliver:${join(base, 'queue')}`]) {
      const r = run(['--config', write(`handler: ${JSON.stringify(handler)}\n`), '--check-config']);
      expect(await r.exited).toBe(0);
    }
    expect(readdirSync(base)).toEqual([]);
    // One that could not be made is still named.
    writeFileSync(join(base, 'file'), 'x');
    const bad = run(['--config', write(`handler: "maildir:${join(base, 'file', 'box')}"\n`), '--check-config']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toContain(`--handler maildir:DIR: ${join(base, 'file', 'box')} cannot be made or written: ENOTDIR`);
  });

  it.each([
    ['listen: 127.0.0.1:0\nlisen: x\n', 'FILE:2: unknown option lisen, did you mean listen? (see --help)'],
    ['handler: sink\nworkers: many\n', 'FILE:2: --workers: expected a whole number, got "many" (see --help)'],
    ['handler: sink\nlmtp: yes please\n', 'FILE:2: lmtp: expected true or false (see --help)'],
    ['handler: sink\nsettings:\n  maxRecipients: 0\n', 'FILE:3: maxRecipients: maxRecipients must not be less than 1 (see --help)'],
    ['handler: sink\nsettings:\n  hostnam: x\n', 'FILE:3: hostnam: unknown setting, did you mean hostname? (see --help)'],
    ['- just\n- a list\n', 'FILE:1: expected a mapping of option names to values (see --help)'],
  ])('%j: one line naming the file and line, exit 2', async (text, message) => {
    const file = write(text);
    const r = run(['--config', file, '--check-config']);
    expect(await r.exited).toBe(2);
    expect(r.stderr()).toBe(`sirocco: ${message.replace('FILE', file)}\n`);
  });

  it('names the line of a YAML syntax error, and a file that cannot be read', async () => {
    const bad = run(['--config', write('handler: sink\nlisten: [a\n'), '--check-config']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toMatch(/^sirocco: \S+sirocco\.yaml:\d+: .+ \(see --help\)\n$/);
    const missing = run(['--config', '/nonexistent/sirocco.yaml']);
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toMatch(
      /^sirocco: --config: ENOENT: no such file or directory, open '\/nonexistent\/sirocco\.yaml' \(see --help\)\n$/,
    );
  });

  it('with workers, SIGHUP restarts them and each new one reads the file again', async () => {
    const file = write('handler: sink\nhostname: one.test\nworkers: 1\n');
    const r = await serve(['--config', file]);
    const greeting = async (): Promise<string> => {
      const c = await RawClient.connect(r.port);
      const line = await c.reply();
      c.close();
      return line;
    };
    expect(await greeting()).toBe('220 one.test ESMTP Sirocco\r\n');
    writeFileSync(file, 'handler: sink\nhostname: two.test\nworkers: 1\n');
    process.kill(r.child.pid ?? 0, 'SIGHUP');
    let last = '';
    for (let i = 0; i < 50 && last !== '220 two.test ESMTP Sirocco\r\n'; i++) {
      last = await greeting();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(last).toBe('220 two.test ESMTP Sirocco\r\n');
    process.kill(r.child.pid ?? 0, 'SIGTERM');
    expect(await r.exited).toBe(0);
  });

  it('reads the example configuration that ships with the package', async () => {
    const r = run(['--config', join(ROOT, 'sirocco.example.yaml'), '--handler', 'sink', '--check-config']);
    expect(await r.exited).toBe(0);
    expect(r.stdout()).toContain('handler: sink\n');
    expect(r.stdout()).toContain('  maildirPerRecipient: true\n');
  });
});

describe('sirocco --help and bad options', () => {
  it('documents everything in --help and exits 0', async () => {
    const r = run(['--help']);
    expect(await r.exited).toBe(0);
    for (const option of [
      '--listen',
      '--config',
      '--check-config',
      '--handler',
      '--hostname',
      '--max-message-size',
      '--max-recipients',
      '--idle-timeout',
      '--tls-key',
      '--set',
      '--lmtp',
      '--proxy-from',
      '--metrics-listen',
      '--pop3-listen',
      '--pop3-users',
      '--workers',
      '--drain-timeout',
      '--log-level',
      'maildir:DIR',
      'relay:HOST[:PORT]',
      'deliver:QUEUE_DIR',
      'trustedNetworks',
      'relayDomains',
      'sirocco queue list|show|retry|delete',
      'FILE:CLASS',
    ]) {
      expect(r.stdout()).toContain(option);
    }
  });

  it.each([
    [['--bogus'], "sirocco: Unknown option '--bogus' (see --help)"],
    [['--listen', 'nowhere'], 'sirocco: --listen: expected HOST:PORT, [IPv6]:PORT, :PORT or a socket path, got "nowhere" (see --help)'],
    [
      ['--handler', 'teleport'],
      'sirocco: --handler: expected sink, debugging, maildir:DIR, relay:HOST[:PORT], deliver:QUEUE_DIR or FILE:CLASS, got "teleport" (see --help)',
    ],
    [['--max-message-size', 'big'], 'sirocco: --max-message-size: expected a positive whole number, got "big" (see --help)'],
    [['--tls-key', 'k.pem'], 'sirocco: --tls-key and --tls-cert go together (see --help)'],
    [['--set', 'noequals'], 'sirocco: --set: expected KEY=VALUE, got "noequals" (see --help)'],
    [['--workers', 'many'], 'sirocco: --workers: expected a whole number, got "many" (see --help)'],
    [['--drain-timeout', '1.5'], 'sirocco: --drain-timeout: expected a whole number, got "1.5" (see --help)'],
    [
      ['--log-level', 'loud'],
      'sirocco: --log-level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud" (see --help)',
    ],
    [['--set', 'maxRecipients=0'], 'sirocco: Invalid settings: maxRecipients: maxRecipients must not be less than 1 (see --help)'],
    [['--handler', 'missing.js:Nope'], /^sirocco: --handler: cannot load missing\.js: .* \(see --help\)$/],
    [
      ['--handler', `${'FIXTURE'}:notAHandler`],
      'sirocco: --handler: FIXTURE exports no RequestHandler subclass named notAHandler (see --help)',
    ],
  ])('%j: one line and exit 2', async (args, message) => {
    const r = run(args.map((a) => a.replace('FIXTURE', FIXTURE)));
    expect(await r.exited).toBe(2);
    const lines = r.stderr().trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    if (typeof message === 'string') expect(lines[0]).toBe(message.replace('FIXTURE', FIXTURE));
    else expect(lines[0]).toMatch(message);
  });
});

describe('sirocco handlers', () => {
  it('debugging (the default) prints each message, and SIGINT closes cleanly', async () => {
    const r = await serve(['--hostname', 'cli.test']);
    const c = await send(r.port);
    expect(c.last).toMatch(/^250 /);
    c.close();
    await until(() => r.stdout().includes('END MESSAGE'));
    expect(r.stdout()).toContain('> hello\n');
    process.kill(r.child.pid ?? 0, 'SIGINT');
    expect(await r.exited).toBe(0);
    expect(r.stdout()).toContain('sirocco: closing\n');
  });

  it('sink, with the size and recipient options', async () => {
    const r = await serve(['--handler', 'sink', '--max-message-size', '100', '--max-recipients', '1']);
    const c = await RawClient.greeted(r.port);
    expect(await c.command('EHLO x.test')).toContain('250-SIZE 100\r\n');
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<1@b.test>');
    expect(await c.command('RCPT TO:<2@b.test>')).toBe('452 4.5.3 Too many recipients\r\n');
    c.close();
  });

  it('relay:HOST:PORT forwards to the smarthost', async () => {
    const received: Received[] = [];
    const smarthost = await startServer(recordingHandler(received));
    const r = await serve(['--handler', `relay:127.0.0.1:${smarthost.port}`]);
    const c = await send(r.port);
    expect(c.last).toMatch(/^250 2\.0\.0 Ok: relayed as /);
    c.close();
    // The relay's own trace field first (RFC 5321 §4.4), then the message as sent.
    expect(received[0]?.body.toString()).toMatch(
      /^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n[^]*\r\nSubject: t\r\n\r\nhello\r\n$/,
    );
  });

  it("FILE:CLASS runs the user's own handler with --set settings", async () => {
    const r = await serve(['--handler', `${FIXTURE}:OnlyFor`, '--set', 'domain=example.com']);
    const refused = await RawClient.greeted(r.port);
    await refused.command('EHLO x.test');
    await refused.command('MAIL FROM:<a@b.test>');
    expect(await refused.command('RCPT TO:<x@other.test>')).toBe('550 5.7.1 only example.com\r\n');
    refused.close();
    const c = await send(r.port);
    expect(c.last).toMatch(/^250 /);
    c.close();
    await until(() => r.stdout().includes('custom handler got'));
  });

  it('--lmtp, --proxy-from and --metrics-listen reach the settings', async () => {
    const path = join(tempDir(), 'lmtp.sock');
    const metricsPort = await freePort();
    const r = run([
      '--listen',
      path,
      '--handler',
      'sink',
      '--lmtp',
      '--proxy-from',
      '10.0.0.0/8',
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
    ]);
    await until(() => r.stdout().includes('serving'), 15_000);
    const c = await RawClient.greeted(path);
    expect(await c.command('EHLO x.test')).toBe('500 5.5.1 This is an LMTP server: greet with LHLO\r\n');
    expect(await c.command('LHLO x.test')).toMatch(/^250-/);
    c.close();
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('sirocco_smtpd_connects_total 1\n');
  });

  it('--workers 2 serves from two processes, and SIGTERM closes them all', async () => {
    const r = await serve(['--workers', '2', '--handler', `${FIXTURE}:SaysItsPid`, '--log-level', 'info']);
    const pids = new Set<string>();
    for (let i = 0; i < 12 && pids.size < 2; i++) {
      const c = await send(r.port);
      pids.add(/taken by pid (\d+)/.exec(c.last)?.[1] ?? '');
      c.close();
    }
    expect(pids.size).toBe(2);
    expect(pids.has(String(r.child.pid))).toBe(false);
    expect(r.stdout().match(/sirocco: serving/g)).toHaveLength(1);
    // One key per field: the primary's own pid once, the worker's under its own name.
    const logged = r
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'));
    expect(logged.filter((line) => line.split('"pid":').length > 2)).toEqual([]);
    const listening = logged
      .map((line) => JSON.parse(line) as { msg: string; pid: number; workerPid?: number })
      .filter((l) => l.msg === 'worker listening');
    expect(listening.map((l) => [l.pid, pids.has(String(l.workerPid))])).toEqual([
      [r.child.pid, true],
      [r.child.pid, true],
    ]);
    process.kill(r.child.pid ?? 0, 'SIGTERM');
    expect(await r.exited).toBe(0);
  });

  it('reads --tls-key and --tls-cert again on SIGHUP', async () => {
    const certs = makeCertificates();
    try {
      const dir = tempDir();
      const keyFile = join(dir, 'key.pem');
      const certFile = join(dir, 'cert.pem');
      writeFileSync(keyFile, certs.key);
      writeFileSync(certFile, certs.cert);
      const r = await serve(['--handler', 'sink', '--tls-key', keyFile, '--tls-cert', certFile, '--hostname', 'mx.test']);
      const cn = async (servername: string): Promise<unknown> => {
        const c = await RawClient.ehlo(r.port);
        await c.command('STARTTLS');
        const socket = await c.startTls({ ca: certs.ca, servername });
        const name = socket.getPeerCertificate().subject.CN;
        c.close();
        return name;
      };
      expect(await cn('localhost')).toBe('localhost');
      writeFileSync(keyFile, certs.otherKey);
      writeFileSync(certFile, certs.otherCert);
      process.kill(r.child.pid ?? 0, 'SIGHUP');
      await until(() => r.stdout().includes('sirocco: TLS key and certificate reloaded'));
      expect(await cn('other.test')).toBe('other.test');
    } finally {
      certs.cleanup();
    }
  });

  it('listens on a Unix socket path', async () => {
    const path = join(tempDir(), 'smtp.sock');
    const r = run(['--listen', path, '--handler', 'sink']);
    await until(() => r.stdout().includes('serving'), 15_000);
    const c = await send(path);
    expect(c.last).toMatch(/^250 /);
    c.close();
  });
});

describe('maildir durability', () => {
  it('a message acknowledged with 250 is complete on disk after SIGKILL right after the reply', async () => {
    const dir = tempDir();
    const r = await serve(['--handler', `maildir:${dir}`, '--hostname', 'durable.test']);
    const body = `Subject: durable\r\n\r\n${'line of the message body\r\n'.repeat(2000)}end`;
    const c = await send(r.port, 'c@example.com', body);
    // The reply is in hand: kill the server at once, giving it no chance to finish anything.
    process.kill(r.child.pid ?? 0, 'SIGKILL');
    expect(c.last).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await r.exited;
    const files = readdirSync(join(dir, 'new'));
    expect(files).toHaveLength(1);
    const stored = readFileSync(join(dir, 'new', files[0] ?? '')).toString();
    expect(stored.slice(stored.indexOf('Subject: durable'))).toBe(`${body}\r\n`);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });
});
