/**
 * `--pop3-listen` and `--pop3-users`: POP3 beside the SMTP server, over the Maildir that
 * `--handler maildir:DIR` writes, for the users of a password file.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ConnectionKitSettings } from '../app/kit-settings.js';
import type { LimitStore } from '../app/limit-store.js';
import type { AuthCredentials } from '../protocol/sasl-base.js';
import { MaildirStore } from '../pop3/maildir-store.js';
import { Pop3Server } from '../pop3/pop3-server.js';
import { parseListen, UsageError } from './usage.js';

/** Reads `NAME:PASSWORD` lines (blank lines and `#` comments skipped). */
export function readUsers(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--pop3-users: ${err instanceof Error ? err.message : String(err)}`);
  }
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UsageError(`--pop3-users: line ${i + 1} of ${file} is not NAME:PASSWORD`);
    users.set(line.slice(0, colon), line.slice(colon + 1));
  });
  if (users.size === 0) throw new UsageError(`--pop3-users: ${file} names no user`);
  return users;
}

/** `--pop3-listen` and `--pop3-users` checked: where to listen and the users' file. */
export function pop3Option(
  listen: string | undefined,
  users: string | undefined,
  handler: string | undefined,
  workers: number | undefined,
): { readonly port: number; readonly host: string; readonly users: ReadonlyMap<string, string> } | undefined {
  if (listen === undefined) {
    if (users !== undefined) throw new UsageError('--pop3-users goes with --pop3-listen');
    return undefined;
  }
  if (users === undefined) throw new UsageError('--pop3-listen needs --pop3-users FILE (NAME:PASSWORD lines)');
  if (handler?.startsWith('maildir:') !== true) throw new UsageError('--pop3-listen serves the Maildir of --handler maildir:DIR');
  if (workers !== undefined) throw new UsageError('--pop3-listen is served by one process: leave out --workers');
  const target = parseListen(listen, '--pop3-listen');
  if ('path' in target) throw new UsageError('--pop3-listen: expected HOST:PORT, [IPv6]:PORT or :PORT');
  // Read now: a missing or malformed file stops the command before anything listens.
  return { ...target, users: readUsers(users) };
}

/** What the POP3 server beside the SMTP one needs. */
export interface Pop3Plan {
  readonly port: number;
  readonly host: string;
  readonly users: ReadonlyMap<string, string>;
  readonly maildir: string;
  readonly perUser: boolean;
  readonly tls: { key: Buffer; cert: Buffer } | undefined;
  readonly allowInsecureAuth: boolean;
  readonly hostname: string;
  readonly logger: Logger;
  /** The SMTP server's per-client limits and their store: with `--limit-store`, POP3's password failures count across the fleet too. */
  readonly limits: Pick<
    ConnectionKitSettings,
    | 'maxConnectionsPerIp'
    | 'maxConnectionsPerNet'
    | 'connectionRatePerIp'
    | 'authFailuresPerIp'
    | 'limitWindow'
    | 'ipv6PrefixLength'
    | 'limitExempt'
    | 'limitStore'
  >;
}

/** The limits as POP3's options take them (a store only when there is one). */
function limits(given: Pop3Plan['limits']): Omit<Pop3Plan['limits'], 'limitStore'> & { limitStore?: LimitStore } {
  const { limitStore, ...rest } = given;
  return limitStore === undefined ? rest : { ...rest, limitStore };
}

/** Starts the POP3 server; resolves with it and the address it listens on. */
export async function startPop3(plan: Pop3Plan): Promise<{ server: Pop3Server; where: string }> {
  const users = plan.users;
  const server = new Pop3Server({
    store: new MaildirStore(plan.maildir, { perUser: plan.perUser }),
    authenticate: (c: AuthCredentials) => c.mechanism === 'PLAIN' && users.get(c.username) === c.password,
    hostname: plan.hostname,
    ...(plan.tls === undefined ? {} : { tls: plan.tls }),
    allowInsecureAuth: plan.allowInsecureAuth,
    logger: plan.logger,
    ...limits(plan.limits),
  });
  await server.listen(plan.port, plan.host);
  const address = server.address();
  return { server, where: address === null ? '?' : `${address.address}:${address.port}` };
}
