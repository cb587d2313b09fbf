/**
 * `sirocco catch`: a mail catcher in one command. SMTP accepts every recipient and keeps each
 * message in an inbox; the inbox is served as a JSON API over HTTP (see `InboxHttpServer`).
 */
import type { CatchPlan } from './catcher.js';
import { parseListen, UsageError } from './usage.js';

export const CATCH_USAGE = `Usage: sirocco catch [options]

Catches mail for a development or test setup: SMTP accepts every recipient and keeps
each message in memory (and in a Maildir with --catch-dir); a web view shows them, and
an HTTP JSON API under /api/v1/ lists, searches, waits for, releases and deletes them.

Options:
  --smtp HOST:PORT          where SMTP listens (default 127.0.0.1:1025)
  --http HOST:PORT          where the web view and API listen (default 127.0.0.1:8025);
                            0.0.0.0:8025 or [::]:8025 listens on every interface
  --catch-dir DIR           keep the caught mail in this Maildir (made if missing), so it
                            outlives a restart and other Maildir readers see it
  --max-messages N          keep at most N messages, the oldest go first (default 1000)
  --release-to HOST:PORT    where the API's release sends caught mail; without it, each
                            release request names its server
  --pop3 HOST:PORT          also serve the caught mail over POP3: the user is a recipient
                            address, any password is taken (plaintext allowed)
  --help                    this text

Set SIROCCO_CATCH_AUTH=user:password to require basic auth on the HTTP API.

  curl 'http://127.0.0.1:8025/api/v1/wait?to=bob@example.com&timeout=5000'
  curl 'http://127.0.0.1:8025/api/v1/messages?subject=welcome'
`;

function tcp(text: string | undefined, option: string): { host: string; port: number } {
  if (text === undefined) throw new UsageError(`${option} needs a value`);
  const target = parseListen(text, option);
  if ('path' in target) throw new UsageError(`${option}: expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: target.host === '' ? '0.0.0.0' : target.host, port: target.port };
}

/** Parses `sirocco catch`'s arguments; a bad one is a {@link UsageError} naming it. */
export function parseCatch(args: readonly string[], env: NodeJS.ProcessEnv): CatchPlan {
  let smtp = { host: '127.0.0.1', port: 1025 };
  let http = { host: '127.0.0.1', port: 8025 };
  let maxMessages = 1000;
  let releaseTo: CatchPlan['releaseTo'];
  let pop3: CatchPlan['pop3'];
  let catchDir: string | undefined;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = args[i + 1];
    if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--smtp') {
      smtp = tcp(value, '--smtp');
      i++;
    } else if (arg === '--http') {
      http = tcp(value, '--http');
      i++;
    } else if (arg === '--pop3') {
      pop3 = tcp(value, '--pop3');
      i++;
    } else if (arg === '--release-to') {
      releaseTo = tcp(value, '--release-to');
      if (releaseTo.port === 0) throw new UsageError('--release-to: port 0 names no server');
      i++;
    } else if (arg === '--catch-dir') {
      if (value === undefined || value === '') throw new UsageError('--catch-dir needs a folder');
      catchDir = value;
      i++;
    } else if (arg === '--max-messages') {
      maxMessages = /^\d{1,9}$/.test(value ?? '') ? Number(value) : 0;
      if (maxMessages < 1) throw new UsageError(`--max-messages: expected a positive whole number, got ${JSON.stringify(value ?? '')}`);
      i++;
    } else throw new UsageError(`catch: unknown option ${JSON.stringify(arg)}`);
  }
  const secret = env.SIROCCO_CATCH_AUTH;
  let auth: CatchPlan['auth'];
  if (secret !== undefined && secret !== '') {
    const colon = secret.indexOf(':');
    if (colon <= 0) throw new UsageError('SIROCCO_CATCH_AUTH: expected user:password');
    auth = { user: secret.slice(0, colon), password: secret.slice(colon + 1) };
  }
  return { smtp, http, maxMessages, releaseTo, pop3, catchDir, auth, help };
}

/** Runs `sirocco catch` until SIGINT or SIGTERM; resolves to the exit status. */
export async function catchCommand(args: readonly string[], out: (text: string) => void, err: (text: string) => void): Promise<number> {
  let plan: CatchPlan;
  try {
    plan = parseCatch(args, process.env);
  } catch (e) {
    err(`sirocco: ${e instanceof Error ? e.message : String(e)} (see sirocco catch --help)\n`);
    return 2;
  }
  if (plan.help) {
    out(CATCH_USAGE);
    return 0;
  }
  // Loaded only for this command: the server's own start-up never pays for the test tools.
  const { runCatcher } = await import('./catcher.js');
  return runCatcher(plan, out, err);
}
