/**
 * A private Postfix instance for tests and the bench: its own config_directory, queue_directory
 * and data_directory under one folder, loopback only, started and stopped by whoever made it (the
 * master's pid from its own pid file: nothing else is ever stopped).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';

/** Why a private Postfix cannot run here, or `undefined` when it can. */
export function postfixUnavailable(): string | undefined {
  if (!existsSync('/usr/sbin/postfix') || !existsSync('/usr/sbin/sendmail')) return "Debian's postfix is not installed";
  if (process.getuid?.() !== 0) return `Postfix's master must start as root, and this runs as ${userInfo().username}`;
  try {
    execFileSync('id', ['postfix'], { stdio: 'ignore' });
  } catch {
    return 'there is no postfix user';
  }
  return undefined;
}

/** Runs a command to its end; rejects with its stderr. */
export function run(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface PrivatePostfix {
  /** Its config_directory, for `postfix -c`, `sendmail -C`, `postqueue -c`. */
  readonly conf: string;
  /** Its log file. */
  readonly maillog: string;
  /** The master's pid (known once started). */
  masterPid(): number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Writes a private instance's configuration under `root` (which must exist): Debian's master.cf
 * with `smtp inet` replaced by `listen` (`undefined`: no listener at all) and, when `unchrooted`,
 * no service in a chroot; main.cf with the base settings and `extra` lines.
 */
export function privatePostfix(root: string, extra: readonly string[], listen?: string, unchrooted = false): PrivatePostfix {
  const conf = join(root, 'conf');
  const maillog = join(root, 'maillog');
  chmodSync(root, 0o755);
  for (const dir of ['conf', 'queue', 'data']) mkdirSync(join(root, dir));
  chownSync(join(root, 'data'), Number(execFileSync('id', ['-u', 'postfix']).toString().trim()), -1);
  const master = readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .flatMap((line) => {
      if (/^\s|^#|^$/.test(line)) return [line];
      const fields = line.split(/\s+/);
      if (fields[0] === 'smtp' && fields[1] === 'inet') {
        if (listen === undefined) return [];
        fields[0] = listen;
      }
      if (unchrooted && fields.length >= 8) fields[4] = 'n';
      return [fields.join(' ')];
    })
    .join('\n');
  writeFileSync(join(conf, 'master.cf'), master);
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
      'mydestination =',
      'alias_maps =',
      'alias_database =',
      'biff = no',
      'smtputf8_enable = no',
      `maillog_file = ${maillog}`,
      `maillog_file_prefixes = ${root}`,
      ...extra,
    ].join('\n') + '\n',
  );
  const pidFile = join(root, 'queue', 'pid', 'master.pid');
  const masterPid = (): number => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN);
  return {
    conf,
    maillog,
    masterPid,
    start: async () => {
      await run('/usr/sbin/postfix', ['-c', conf, 'start']);
      for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    },
    stop: async () => {
      const pid = masterPid();
      await run('/usr/sbin/postfix', ['-c', conf, 'stop']).catch(() => undefined);
      for (let i = 0; i < 50 && Number.isInteger(pid); i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
