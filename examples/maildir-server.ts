/**
 * A server that stores every message it receives in a Maildir, durably: the 250 goes out only once
 * the message is on disk. Read the mail with any Maildir reader (mutt -f ./mail, for example).
 *
 *   MAILDIR=./mail PORT=2525 npx tsx examples/maildir-server.ts
 *
 * The same from the command line: npx sirocco --handler maildir:./mail
 */
import { resolve } from 'node:path';
import { Application, Maildir, type MaildirSettings } from '../lib/index.js';

export function createMaildirServer(maildir: string): Application<MaildirSettings> {
  return new Application(Maildir, { hostname: 'localhost', maildir: resolve(maildir) });
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const maildir = process.env.MAILDIR ?? './mail';
  const server = await createMaildirServer(maildir).listen(Number(process.env.PORT ?? 2525), '127.0.0.1');
  const address = server.address();
  console.log(`storing mail in ${resolve(maildir)}; listening on 127.0.0.1:${typeof address === 'object' && address !== null ? address.port : '?'}`);
  process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
  process.once('SIGINT', () => void server.close().then(() => process.exit(0)));
}
